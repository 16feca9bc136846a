/**
 * Fast differentiable ops for tfjs-wasm.
 *
 * tfjs' stock gradients of matMul call `matMul(a, b, transposeA, transposeB)` with a transpose flag;
 * tfjs-wasm sends any flagged matMul to a naive loop (10–27× slower than XNNPACK, DESIGN §4). Every
 * backward pass here therefore materialises the transpose with `tf.transpose` and hands wasm a plain
 * matMul. Forward passes use `tf.fused.matMul` (GEMM + bias + activation in one XNNPACK call).
 */
import * as tf from '@tensorflow/tfjs'

export type Activation = 'linear' | 'sigmoid' | 'tanh' | 'relu'
export const ACTIVATIONS: readonly Activation[] = ['linear', 'sigmoid', 'tanh', 'relu']

type Save = (ts: tf.Tensor[]) => void

/**
 * Thin typed wrapper over tf.customGrad: `f(inputs, save)` returns the value and a gradFunc that
 * returns one gradient per input. Inner ops of the forward are not taped (tfjs runs them with the
 * tape off), so a custom op costs one tape node however many kernels it runs.
 */
export function custom<T extends tf.Tensor = tf.Tensor>(
  f: (
    inputs: tf.Tensor[],
    save: Save,
  ) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[] },
): (...inputs: tf.Tensor[]) => T {
  // tfjs passes the inputs followed by the save function; its CustomGradientFunc type is not exported.
  type Raw = Parameters<typeof tf.customGrad>[0]
  return tf.customGrad(((...args: unknown[]) => {
    const save = args[args.length - 1] as Save
    return f(args.slice(0, -1) as tf.Tensor[], save)
  }) as unknown as Raw) as unknown as (...inputs: tf.Tensor[]) => T
}

/** Plain matMul of a·bᵀ without the flagged (slow on wasm) kernel. */
export function matMulBT(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.matMul(a, tf.transpose(b)))
}

/**
 * dz·Wᵀ (a layer's input gradient) computed as (W·dzᵀ)ᵀ. Same products, same k order per output
 * (bit-identical in our probes), but XNNPACK packs the right operand of every GEMM whose tensor it
 * has not seen: dz·transpose(W) packs a fresh [out, in] copy of W on every step (the parameters
 * change every step), while W·dzᵀ packs dzᵀ, only [out, rows]. At 128 rows × 512×512 this measured
 * 3.9 → 3.0 ms, 512×1000 7.6 → 5.5 ms; it matters most for data-parallel parts (fewer rows per
 * thread, the same weights to pack on each).
 */
export function inputGradient(dz: tf.Tensor2D, W: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.transpose(matMulBT(W, dz)))
}

/** Plain matMul of aᵀ·b without the flagged kernel. */
export function matMulAT(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.matMul(tf.transpose(a), b))
}

/**
 * Column sums of a [N, K] matrix as [K]. A ones-row matMul: wasm's Sum over axis 0 transposes its
 * input first and was ~15× slower than this GEMV in a probe (0.9 ms vs 0.05 ms at 256×512).
 */
export function colSum(g: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => tf.reshape(tf.matMul(tf.ones([1, g.shape[0]]), g), [g.shape[1]]))
}

/** dL/dz from dL/dy for y = act(z), written in terms of the saved output y. */
export function activationGrad(act: Activation, y: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    switch (act) {
      case 'linear':
        return dy
      case 'sigmoid': // σ' = y(1 − y)
        return tf.mul(dy, tf.mul(y, tf.sub(1, y)))
      case 'tanh': // tanh' = 1 − y²
        return tf.mul(dy, tf.sub(1, tf.square(y)))
      case 'relu': // 1 where y > 0 (the subgradient 0 at 0, as tfjs)
        return tf.mul(dy, tf.step(y))
    }
  })
}

/** Apply an activation as an op of its own (value only; gradients come from `activation`). */
function applyActivation(act: Activation, z: tf.Tensor): tf.Tensor {
  switch (act) {
    case 'linear':
      return z
    case 'sigmoid':
      return tf.sigmoid(z)
    case 'tanh':
      return tf.tanh(z)
    case 'relu':
      return tf.relu(z)
  }
}

/** y = act(x) with a gradient written from the output (one tape node, no recomputation). */
export function activation(x: tf.Tensor, act: Activation): tf.Tensor {
  if (act === 'linear') return x
  return custom<tf.Tensor>(([xi], save) => {
    const y = applyActivation(act, xi)
    save([y])
    return { value: y, gradFunc: (dy, [ys]) => [activationGrad(act, ys, dy)] }
  })(x)
}

/** Forward of y = act(x·W + b) as one XNNPACK call where tfjs can fuse the activation. */
function denseForward(x: tf.Tensor2D, W: tf.Tensor2D, b: tf.Tensor1D, act: Activation): tf.Tensor2D {
  if (act === 'tanh') {
    // fused.matMul has no tanh; fuse the bias and apply tanh after.
    return tf.tidy(() => tf.tanh(tf.fused.matMul({ a: x, b: W, bias: b })) as tf.Tensor2D)
  }
  return tf.fused.matMul({ a: x, b: W, bias: b, activation: act }) as tf.Tensor2D
}

export interface DenseOptions {
  /**
   * Whether x needs a gradient. The first layer's input is data: skipping dX saves one
   * [N, out]·[out, in] GEMM and a weight transpose per step.
   */
  inputGrad?: boolean
}

/**
 * Affine layer with fused activation: y = act(x·W + b), x [N, in], W [in, out], b [out].
 * Backward: dz = act'(y)⊙dy; dW = xᵀ·dz; db = 1ᵀ·dz; dx = dz·Wᵀ = (W·dzᵀ)ᵀ — transposes explicit.
 */
export function dense(
  x: tf.Tensor2D,
  W: tf.Tensor2D,
  b: tf.Tensor1D,
  act: Activation = 'linear',
  opts: DenseOptions = {},
): tf.Tensor2D {
  const withX = opts.inputGrad !== false
  if (withX) {
    return custom<tf.Tensor2D>(([xi, Wi, bi], save) => {
      const y = denseForward(xi as tf.Tensor2D, Wi as tf.Tensor2D, bi as tf.Tensor1D, act)
      save([xi, Wi, y])
      return {
        value: y,
        gradFunc: (dy, [xs, Ws, ys]) => {
          const dz = activationGrad(act, ys, dy) as tf.Tensor2D
          return [inputGradient(dz, Ws as tf.Tensor2D), matMulAT(xs as tf.Tensor2D, dz), colSum(dz)]
        },
      }
    })(x, W, b)
  }
  // x is closed over (not an op input), so tfjs asks for no dX. It is still saved: tfjs disposes
  // every forward-pass tensor that was not saved before running the backward pass.
  return custom<tf.Tensor2D>(([Wi, bi], save) => {
    const y = denseForward(x, Wi as tf.Tensor2D, bi as tf.Tensor1D, act)
    save([x, y])
    return {
      value: y,
      gradFunc: (dy, [xs, ys]) => {
        const dz = activationGrad(act, ys, dy) as tf.Tensor2D
        return [matMulAT(xs as tf.Tensor2D, dz), colSum(dz)]
      },
    }
  })(W, b)
}

/** Row-wise softmax q and log Σ exp of [n, C] logits, shifted by the row max so exp cannot overflow. */
function softmaxParts(z2: tf.Tensor2D): { q: tf.Tensor2D; lse: tf.Tensor2D } {
  const m = tf.max(z2, 1, true)
  const e = tf.exp(tf.sub(z2, m))
  const s = tf.sum(e, 1, true)
  return { q: tf.div(e, s), lse: tf.add(tf.log(s), m) }
}

/**
 * Soft-target cross-entropy on logits, averaged over frames:
 *   loss = Σₙ wₙ · (−Σ_c pₙ,c · log softmax(zₙ)_c) / Σₙ wₙ
 * logits [..., C] and targets [..., C] (rows need not sum to 1: sparse top-k targets may drop tail
 * mass); weights [...] optional per-frame weights or a 0/1 mask (padding frames of a chunk).
 * Gradient w.r.t. logits: wₙ/Σw · (softmax(zₙ)·Σ_c pₙ,c − pₙ), i.e. softmax − p for normalised p.
 * Targets and weights are data: no gradient flows to them. An all-zero mask gives loss 0.
 */
export function softmaxCrossEntropy(logits: tf.Tensor, targets: tf.Tensor, weights?: tf.Tensor): tf.Scalar {
  const C = logits.shape[logits.shape.length - 1]
  if (targets.shape.length !== logits.shape.length || targets.shape.some((d, i) => d !== logits.shape[i])) {
    throw new Error(`softmaxCrossEntropy: targets shape [${targets.shape}] differs from logits [${logits.shape}]`)
  }
  const n = logits.size / C
  if (weights != null && weights.size !== n) {
    throw new Error(`softmaxCrossEntropy: weights have ${weights.size} entries for ${n} frames`)
  }
  const p = tf.reshape(targets, [n, C]) as tf.Tensor2D
  const w = weights == null ? null : (tf.reshape(weights, [n, 1]) as tf.Tensor2D)
  const op = custom<tf.Scalar>(([z], save) => {
    const z2 = tf.reshape(z, [n, C]) as tf.Tensor2D
    const { q, lse } = softmaxParts(z2)
    const pSum = tf.sum(p, 1, true)
    const perFrame = tf.sub(tf.mul(lse, pSum), tf.sum(tf.mul(p, z2), 1, true)) // −Σ p log q
    // Denominator: number of frames, or the weight total (at least tiny, so an empty mask gives 0).
    const denom = w == null ? tf.scalar(n) : tf.maximum(tf.sum(w), 1e-12)
    const total = w == null ? tf.sum(perFrame) : tf.sum(tf.mul(perFrame, w))
    const loss = tf.div(total, denom) as tf.Scalar
    // Targets and weights are saved too: tfjs disposes unsaved forward-pass tensors before backward.
    save(w == null ? [q, pSum, denom, p] : [q, pSum, denom, p, w])
    const shape = z.shape
    return {
      value: loss,
      gradFunc: (dy, [qs, ps, d, pt, wt]) => {
        let g = tf.sub(tf.mul(qs, ps), pt)
        if (wt != null) g = tf.mul(g, wt)
        return [tf.reshape(tf.mul(g, tf.div(dy, d)), shape)]
      },
    }
  })
  return op(logits)
}

/**
 * softmaxCrossEntropy with sparse targets, without building them densely: per frame n, the
 * probabilities probs[n, j] of the k classes ids[n, j] (distinct), and one probability rest[n]
 * shared by each of the other C − k classes (top-k targets with their tail mass spread evenly).
 * The dense targets this stands for are P[n, c] = rest[n] + Σⱼ [ids[n, j] = c]·(probs[n, j] − rest[n]),
 * and with them
 *   Σ_c P_c·z_c = Σⱼ (probs_j − rest)·z_{ids_j} + rest·Σ_c z_c,   Σ_c P_c = Σⱼ probs_j + (C − k)·rest,
 *   loss = Σₙ wₙ·(lse(zₙ)·Σ_c Pₙ,c − Σ_c Pₙ,c·zₙ,c) / Σₙ wₙ,
 *   dloss/dz = wₙ/Σw · (softmax(zₙ)·Σ_c Pₙ,c − rest − scatter(probs − rest at ids)),
 * the same values as softmaxCrossEntropy(logits, P, weights) up to float rounding; the dense [N, C]
 * arrays are the logits' own softmax and gradient only. ids int32 [..., k], probs [..., k] and
 * rest [...] are data (no gradient), shaped like the logits' leading axes.
 */
export function sparseSoftmaxCrossEntropy(
  logits: tf.Tensor,
  ids: tf.Tensor,
  probs: tf.Tensor,
  rest: tf.Tensor,
  weights?: tf.Tensor,
): tf.Scalar {
  const C = logits.shape[logits.shape.length - 1]
  const n = logits.size / C
  const lead = logits.shape.slice(0, -1)
  const k = ids.shape[ids.shape.length - 1]
  const sameLead = (s: number[], extra: number) => s.length === lead.length + extra && lead.every((d, i) => d === s[i])
  if (!sameLead(ids.shape, 1) || ids.dtype !== 'int32') {
    throw new Error(
      `sparseSoftmaxCrossEntropy: ids must be int32 [${lead},k], got ${ids.dtype} [${ids.shape}] for logits [${logits.shape}]`,
    )
  }
  if (!sameLead(probs.shape, 1) || probs.shape[probs.shape.length - 1] !== k) {
    throw new Error(`sparseSoftmaxCrossEntropy: probs shape [${probs.shape}] differs from ids [${ids.shape}]`)
  }
  if (rest.size !== n) throw new Error(`sparseSoftmaxCrossEntropy: rest has ${rest.size} entries for ${n} frames`)
  if (k > C) throw new Error(`sparseSoftmaxCrossEntropy: ${k} listed classes of ${C}`)
  if (weights != null && weights.size !== n) {
    throw new Error(`sparseSoftmaxCrossEntropy: weights have ${weights.size} entries for ${n} frames`)
  }
  // flat[n, j] = n·C + ids[n, j]: positions of the listed classes in the flattened logits
  const flat = tf.tidy(() =>
    tf.reshape(tf.add(tf.reshape(ids, [n, k]), tf.reshape(tf.range(0, n * C, C, 'int32'), [n, 1])), [n * k]),
  )
  const pk = tf.reshape(probs, [n, k]) as tf.Tensor2D
  const r = tf.reshape(rest, [n, 1]) as tf.Tensor2D
  const w = weights == null ? null : (tf.reshape(weights, [n, 1]) as tf.Tensor2D)
  const op = custom<tf.Scalar>(([z], save) => {
    const z2 = tf.reshape(z, [n, C]) as tf.Tensor2D
    const { q, lse } = softmaxParts(z2)
    const zk = tf.reshape(tf.gather(tf.reshape(z2, [n * C]), flat), [n, k]) // listed classes' logits
    const dk = tf.sub(pk, r) // listed classes' excess over the shared probability
    const pSum = tf.add(tf.sum(pk, 1, true), tf.mul(r, C - k))
    const pz = tf.add(tf.sum(tf.mul(dk, zk), 1, true), tf.mul(r, tf.sum(z2, 1, true)))
    const perFrame = tf.sub(tf.mul(lse, pSum), pz) // −Σ P log q
    const denom = w == null ? tf.scalar(n) : tf.maximum(tf.sum(w), 1e-12)
    const total = w == null ? tf.sum(perFrame) : tf.sum(tf.mul(perFrame, w))
    const loss = tf.div(total, denom) as tf.Scalar
    save(w == null ? [q, pSum, denom, r, dk, flat] : [q, pSum, denom, r, dk, flat, w])
    const shape = z.shape
    return {
      value: loss,
      gradFunc: (dy, [qs, ps, d, rs, dks, fl, wt]) => {
        const excess = tf.reshape(tf.scatterND(tf.reshape(fl, [n * k, 1]), tf.reshape(dks, [n * k]), [n * C]), [n, C])
        let g = tf.sub(tf.sub(tf.mul(qs, ps), rs), excess)
        if (wt != null) g = tf.mul(g, wt)
        return [tf.reshape(tf.mul(g, tf.div(dy, d)), shape)]
      },
    }
  })
  try {
    return op(logits)
  } finally {
    flat.dispose()
  }
}
