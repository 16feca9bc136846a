import * as tf from '@tensorflow/tfjs'
import { glorotUniform, paramSeed } from './init.js'
import { colSum, matMulAT, matMulBT } from './ops.js'

/**
 * Restricted Boltzmann machines trained by one-step contrastive divergence, as Kaldi's
 * `rbm-train-cd1-frmshuff` (used by `steps/nnet/pretrain_dbn.sh`):
 *   h0 = σ(v0·W + b_h), h0s ~ Bernoulli(h0)
 *   v1 = h0s·Wᵀ + b_v (Gaussian visible units: the mean, no sampling) or σ(…) (Bernoulli)
 *   h1 = σ(v1·W + b_h)
 *   ∇W = (v0ᵀh0 − v1ᵀh1)/N,  ∇b_v = mean(v0 − v1),  ∇b_h = mean(h0 − h1)
 *   Δ ← μ·Δ + ε(1 − μ)·(∇ − λ·W),  W ← W + Δ
 * The (1 − μ) factor is Kaldi's: it keeps the effective step constant as momentum μ ramps from
 * 0.5 to 0.9; without it the usual rates (0.01 Gaussian, 0.4 Bernoulli) blow the weights up.
 * Gaussian visible units assume unit-variance input (apply CMVN with variance normalisation).
 */
export type VisibleType = 'gaussian' | 'bernoulli'

export interface Rbm {
  visible: VisibleType
  W: tf.Variable // [V, H]
  vb: tf.Variable // [V]
  hb: tf.Variable // [H]
  dW: tf.Variable
  dvb: tf.Variable
  dhb: tf.Variable
}

export function createRbm(
  visible: VisibleType,
  numVisible: number,
  numHidden: number,
  seed: number,
  name: string,
): Rbm {
  // Kaldi initialises RBM weights N(0, 0.1); a Glorot-uniform draw of similar scale is used here so
  // all ktp initialisation shares one seeded generator.
  const w = glorotUniform(numVisible, numHidden, paramSeed(seed, `${name}.W`))
  return {
    visible,
    W: tf.variable(tf.tensor2d(w, [numVisible, numHidden]), false),
    vb: tf.variable(tf.zeros([numVisible]), false),
    hb: tf.variable(tf.zeros([numHidden]), false),
    dW: tf.variable(tf.zeros([numVisible, numHidden]), false),
    dvb: tf.variable(tf.zeros([numVisible]), false),
    dhb: tf.variable(tf.zeros([numHidden]), false),
  }
}

export function disposeRbm(r: Rbm): void {
  tf.dispose([r.W, r.vb, r.hb, r.dW, r.dvb, r.dhb])
}

/** Hidden probabilities σ(v·W + b_h): also the input of the next RBM in the stack. */
export function rbmHidden(r: Rbm, v: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.sigmoid(tf.add(tf.matMul(v, r.W), r.hb)) as tf.Tensor2D)
}

export interface Cd1Step {
  lr: number
  momentum: number
  l2: number
  /** Seed of this step's Bernoulli sampling (deterministic runs). */
  seed: number
}

/** One CD-1 update on a batch; returns the batch's reconstruction error Σ(v0 − v1)² / N as a tensor. */
export function cd1(r: Rbm, v0: tf.Tensor2D, s: Cd1Step): tf.Scalar {
  return tf.tidy(() => {
    const n = v0.shape[0]
    const h0 = rbmHidden(r, v0)
    const h0s = tf.cast(tf.less(tf.randomUniform(h0.shape, 0, 1, 'float32', s.seed), h0), 'float32') as tf.Tensor2D
    const vMean = tf.add(matMulBT(h0s, r.W as unknown as tf.Tensor2D), r.vb) as tf.Tensor2D
    const v1 = r.visible === 'gaussian' ? vMean : (tf.sigmoid(vMean) as tf.Tensor2D)
    const h1 = rbmHidden(r, v1)
    const inv = 1 / n
    const gW = tf.mul(tf.sub(matMulAT(v0, h0), matMulAT(v1, h1)), inv)
    const gvb = tf.mul(tf.sub(colSum(v0), colSum(v1)), inv)
    const ghb = tf.mul(tf.sub(colSum(h0), colSum(h1)), inv)
    const step = s.lr * (1 - s.momentum)
    r.dW.assign(tf.add(tf.mul(r.dW, s.momentum), tf.mul(tf.sub(gW, tf.mul(r.W, s.l2)), step)))
    r.dvb.assign(tf.add(tf.mul(r.dvb, s.momentum), tf.mul(gvb, step)))
    r.dhb.assign(tf.add(tf.mul(r.dhb, s.momentum), tf.mul(ghb, step)))
    r.W.assign(tf.add(r.W, r.dW))
    r.vb.assign(tf.add(r.vb, r.dvb))
    r.hb.assign(tf.add(r.hb, r.dhb))
    return tf.div(tf.sum(tf.square(tf.sub(v0, v1))), n) as tf.Scalar
  })
}

/** Kaldi's momentum schedule: 0.5 rising linearly to 0.9 over the first `rampFrames` frames. */
export function rbmMomentum(framesSeen: number, rampFrames: number, start = 0.5, end = 0.9): number {
  return rampFrames <= 0 ? end : start + (end - start) * Math.min(1, framesSeen / rampFrames)
}
