/**
 * Recurrent acoustic models: stacked LSTM / LSTMP / GRU / RNN layers, uni- or bidirectional, then
 * an optional linear bottleneck and a per-frame linear output layer.
 *
 * Internally time-major: the input [B, T, D] is transposed once to [T, B, D] and flattened to
 * [T·B, D], so a step is a contiguous row block and a layer's input projection is one GEMM. The
 * hidden sequence is transposed back to batch-major before the output layer (H ≪ C columns, so
 * that is the cheaper place) and logits come out as [B, T, C].
 *
 * Parameter names: `l{k}.{fw|bw}.{Wx,b,U,peep,Wp}`, `bottleneck.{W,b}`, `out.{W,b}`.
 * Gate layouts: LSTM [i, f, o, g] (sigmoid gates contiguous); GRU [z, r, h] as tfjs.
 */
import * as tf from '@tensorflow/tfjs'
import type { ModelSpec, RecurrentConfig } from './config.js'
import { glorotUniform, paramSeed, uniform } from './init.js'
import type { Model } from './model.js'
import { dense } from './ops.js'
import { ParamSet, type Params } from './params.js'
import { gruRecurrence, lstmRecurrence, rnnRecurrence } from './recurrence.js'

/** Gate blocks per cell type. */
export function gatesOf(type: RecurrentConfig['type']): number {
  return type === 'gru' ? 3 : type === 'rnn' ? 1 : 4
}

/** Output width of one direction of a layer (the projection for LSTMP). */
export function unitOut(cfg: RecurrentConfig): number {
  return cfg.type === 'lstmp' ? cfg.projection! : cfg.cells
}

export function directions(cfg: RecurrentConfig): ('fw' | 'bw')[] {
  return cfg.bidirectional ? ['fw', 'bw'] : ['fw']
}

/** Input width of layer l. */
export function layerInput(cfg: RecurrentConfig, l: number, inputDim: number): number {
  return l === 0 ? inputDim : unitOut(cfg) * directions(cfg).length
}

export function buildRecurrent(spec: ModelSpec & { model: RecurrentConfig }): Model {
  const cfg = spec.model
  const H = cfg.cells
  const G = gatesOf(cfg.type)
  const R = unitOut(cfg)
  const dirs = directions(cfg)
  const init: [string, Float32Array, number[]][] = []
  const add = (name: string, values: Float32Array, shape: number[]) => init.push([name, values, shape])
  const glorot = (name: string, a: number, b: number) =>
    add(name, glorotUniform(a, b, paramSeed(spec.seed, name)), [a, b])
  for (let l = 0; l < cfg.layers; l++) {
    const D = layerInput(cfg, l, spec.inputDim)
    for (const d of dirs) {
      const pre = `l${l}.${d}`
      glorot(`${pre}.Wx`, D, G * H)
      const b = new Float32Array(G * H)
      if (G === 4) b.fill(1, H, 2 * H) // forget-gate bias 1: remember by default early in training
      add(`${pre}.b`, b, [G * H])
      glorot(`${pre}.U`, R, G * H)
      if (cfg.peepholes) add(`${pre}.peep`, uniform(3 * H, 0.1, paramSeed(spec.seed, `${pre}.peep`)), [3, H])
      if (cfg.type === 'lstmp') glorot(`${pre}.Wp`, H, R)
    }
  }
  let F = R * dirs.length
  if (cfg.bottleneck != null) {
    glorot('bottleneck.W', F, cfg.bottleneck)
    add('bottleneck.b', new Float32Array(cfg.bottleneck), [cfg.bottleneck])
    F = cfg.bottleneck
  }
  glorot('out.W', F, spec.numClasses)
  add('out.b', new Float32Array(spec.numClasses), [spec.numClasses])
  const params = new ParamSet(init)

  /** One direction of layer l over time-major rows x [T·B, D]. */
  function direction(x: tf.Tensor2D, p: Params, l: number, d: 'fw' | 'bw', B: number, T: number): tf.Tensor2D {
    const pre = `l${l}.${d}`
    const xp = dense(x, p[`${pre}.Wx`] as tf.Tensor2D, p[`${pre}.b`] as tf.Tensor1D, 'linear', { inputGrad: l > 0 })
    const U = p[`${pre}.U`] as tf.Tensor2D
    const shape = { T, B, H, reverse: d === 'bw' }
    switch (cfg.type) {
      case 'lstm':
      case 'lstmp':
        return lstmRecurrence(
          xp,
          U,
          cfg.peepholes ? (p[`${pre}.peep`] as tf.Tensor2D) : null,
          cfg.type === 'lstmp' ? (p[`${pre}.Wp`] as tf.Tensor2D) : null,
          { ...shape, peepholes: cfg.peepholes, projection: cfg.projection },
        )
      case 'gru':
        return gruRecurrence(xp, U, shape)
      case 'rnn':
        return rnnRecurrence(xp, U, shape)
    }
  }

  return {
    spec,
    params,
    input: 'sequence',
    apply(x: tf.Tensor, p: Params = params.tensors()): tf.Tensor {
      if (x.rank !== 3 || x.shape[2] !== spec.inputDim) {
        throw new Error(`${cfg.type} input: expected [batch, time, ${spec.inputDim}], got [${x.shape}]`)
      }
      const [B, T] = x.shape as [number, number, number]
      let h = tf.reshape(tf.transpose(x, [1, 0, 2]), [T * B, spec.inputDim]) as tf.Tensor2D
      for (let l = 0; l < cfg.layers; l++) {
        const outs = dirs.map((d) => direction(h, p, l, d, B, T))
        h = outs.length === 1 ? outs[0] : tf.concat(outs, 1)
      }
      const width = h.shape[1]
      h = tf.reshape(tf.transpose(tf.reshape(h, [T, B, width]), [1, 0, 2]), [B * T, width])
      if (cfg.bottleneck != null) h = dense(h, p['bottleneck.W'] as tf.Tensor2D, p['bottleneck.b'] as tf.Tensor1D)
      const logits = dense(h, p['out.W'] as tf.Tensor2D, p['out.b'] as tf.Tensor1D)
      return tf.reshape(logits, [B, T, spec.numClasses])
    },
  }
}
