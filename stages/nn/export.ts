/**
 * Export a trained ktp model to a standard tfjs-layers model (tf.sequential), so a saved student
 * loads in plain @tensorflow/tfjs and predicts the same logits as ktp's forward pass.
 *
 * DNN → Dense layers. LSTM → tf.layers.lstm, GRU → tf.layers.gru, RNN → tf.layers.simpleRNN,
 * each wrapped in tf.layers.bidirectional (concat) when bidirectional; peephole LSTM and LSTMP →
 * the custom KtpLSTM layer (import './export-layers.js' before loading). Then optional bottleneck
 * Dense and the output Dense, applied per frame. Gate order is converted where tfjs differs:
 * ktp LSTM columns [i, f, o, g] → tfjs [i, f, c(=g), o]; GRU is [z, r, h] on both sides and ktp's
 * GRU computes tfjs' GRUCell (reset before the recurrent product, one bias). Recurrent activation
 * is set to 'sigmoid' explicitly: tfjs' default is hardSigmoid.
 */
import * as tf from '@tensorflow/tfjs'
import type { DnnConfig, RecurrentConfig } from './config.js'
import { dnnLayerName, dnnSizes } from './dnn.js'
import { KtpLSTM } from './export-layers.js'
import type { Model } from './model.js'
import { directions, layerInput } from './rnn.js'

export interface ExportOptions {
  /** Append a softmax to the output layer (posteriors instead of logits). Default false. */
  softmax?: boolean
}

/** Reorder blocks of `n` columns of a row-major [rows, k·n] matrix (or a [k·n] vector). */
export function permuteColumnBlocks(values: Float32Array, rows: number, n: number, order: number[]): Float32Array {
  const k = order.length
  const out = new Float32Array(values.length)
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < k; j++) {
      const src = r * k * n + order[j] * n
      out.set(values.subarray(src, src + n), r * k * n + j * n)
    }
  }
  return out
}

/** ktp LSTM [i, f, o, g] → tfjs [i, f, c, o]: new block j takes old block ORDER[j]. */
const LSTM_TO_TFJS = [0, 1, 3, 2]

export function toLayersModel(model: Model, opts: ExportOptions = {}): tf.Sequential {
  const flat = model.params.toFlat()
  const spec = model.spec
  const seq = tf.sequential()
  const weights: tf.Tensor[] = []
  const pushW = (name: string, shape: number[], values?: Float32Array) =>
    weights.push(tf.tensor(values ?? flat[name], shape))
  if (spec.model.type === 'dnn') {
    const cfg = spec.model as DnnConfig
    const sizes = dnnSizes(cfg, spec.inputDim, spec.numClasses)
    const L = sizes.length - 1
    for (let l = 0; l < L; l++) {
      const last = l === L - 1
      const activation = last ? (opts.softmax ? 'softmax' : 'linear') : cfg.activation
      seq.add(tf.layers.dense({ units: sizes[l + 1], activation, ...(l === 0 ? { inputShape: [spec.inputDim] } : {}) }))
      const name = dnnLayerName(l, L)
      pushW(`${name}.W`, [sizes[l], sizes[l + 1]])
      pushW(`${name}.b`, [sizes[l + 1]])
    }
  } else {
    const cfg = spec.model as RecurrentConfig
    const H = cfg.cells
    const dirs = directions(cfg)
    const custom = cfg.type === 'lstmp' || cfg.peepholes
    for (let l = 0; l < cfg.layers; l++) {
      const D = layerInput(cfg, l, spec.inputDim)
      const inputShape = l === 0 ? { inputShape: [null, spec.inputDim] } : {}
      if (custom) {
        seq.add(
          new KtpLSTM({
            units: H,
            projection: cfg.projection,
            peepholes: cfg.peepholes,
            bidirectional: cfg.bidirectional,
            ...inputShape,
          }),
        )
        for (const d of dirs) {
          const pre = `l${l}.${d}`
          const R = cfg.projection ?? H
          pushW(`${pre}.Wx`, [D, 4 * H])
          pushW(`${pre}.U`, [R, 4 * H])
          pushW(`${pre}.b`, [4 * H])
          if (cfg.peepholes) pushW(`${pre}.peep`, [3, H])
          if (cfg.projection != null) pushW(`${pre}.Wp`, [H, R])
        }
        continue
      }
      const base = { units: H, returnSequences: true, activation: 'tanh' as const }
      const make = (extra: { inputShape?: (number | null)[] }) =>
        cfg.type === 'lstm'
          ? tf.layers.lstm({ ...base, recurrentActivation: 'sigmoid', unitForgetBias: false, ...extra })
          : cfg.type === 'gru'
            ? tf.layers.gru({ ...base, recurrentActivation: 'sigmoid', ...extra })
            : tf.layers.simpleRNN({ ...base, ...extra })
      // tfjs' Bidirectional concatenates [forward, backward] and re-reverses the backward output in
      // time, as ktp does; its weights are the forward layer's then the backward layer's.
      seq.add(
        cfg.bidirectional
          ? tf.layers.bidirectional({ layer: make({}) as tf.RNN, mergeMode: 'concat', ...inputShape })
          : make(inputShape),
      )
      const G = cfg.type === 'lstm' ? 4 : cfg.type === 'gru' ? 3 : 1
      for (const d of dirs) {
        const pre = `l${l}.${d}`
        const fix = (v: Float32Array, rows: number) => (G === 4 ? permuteColumnBlocks(v, rows, H, LSTM_TO_TFJS) : v)
        pushW(`${pre}.Wx`, [D, G * H], fix(flat[`${pre}.Wx`], D))
        pushW(`${pre}.U`, [H, G * H], fix(flat[`${pre}.U`], H))
        pushW(`${pre}.b`, [G * H], fix(flat[`${pre}.b`], 1))
      }
    }
    if (cfg.bottleneck != null) {
      const F = (cfg.projection ?? H) * dirs.length
      seq.add(tf.layers.dense({ units: cfg.bottleneck, activation: 'linear' }))
      pushW('bottleneck.W', [F, cfg.bottleneck])
      pushW('bottleneck.b', [cfg.bottleneck])
    }
    const F = cfg.bottleneck ?? (cfg.projection ?? H) * dirs.length
    seq.add(tf.layers.dense({ units: spec.numClasses, activation: opts.softmax ? 'softmax' : 'linear' }))
    pushW('out.W', [F, spec.numClasses])
    pushW('out.b', [spec.numClasses])
  }
  seq.setWeights(weights)
  tf.dispose(weights)
  return seq
}
