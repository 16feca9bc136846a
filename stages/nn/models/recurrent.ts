/**
 * Recurrent acoustic models: stacked LSTM / LSTMP / GRU / RNN layers, uni- or bidirectional, then
 * an optional linear bottleneck and a per-frame linear output layer. One family, one file: the four
 * cells share the stacking, the schema and its stored defaults (a GRU's spec carries
 * `peepholes: false` like an LSTM's, and model directories written so must keep loading).
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
import { z } from 'zod'
import { KtpLSTM } from '../export-layers.js'
import { glorotUniform, paramSeed, uniform } from '../init.js'
import { defineModelType } from '../model.js'
import { lstmLayer } from '../lstm-layer.js'
import { dense } from '../ops.js'
import { ParamSet, type Params } from '../params.js'
import { gruRecurrence, lstmRecurrence, rnnRecurrence } from '../recurrence.js'

export const RecurrentConfigSchema = z
  .object({
    type: z
      .enum(['lstm', 'lstmp', 'gru', 'rnn'])
      .describe('Cell type: LSTM, LSTM with recurrent projection (Sak et al. 2014), GRU, or tanh RNN'),
    layers: z.number().int().positive().default(1).describe('Number of stacked recurrent layers'),
    cells: z.number().int().positive().describe('Cells (hidden units) per layer and direction'),
    projection: z
      .number()
      .int()
      .positive()
      .optional()
      .describe('Recurrent projection size (lstmp only; required there)'),
    peepholes: z.boolean().default(false).describe('Peephole connections from the cell to the gates (lstm/lstmp only)'),
    bidirectional: z
      .boolean()
      .default(false)
      .describe('Run each layer in both directions and concatenate their outputs'),
    bottleneck: z
      .number()
      .int()
      .positive()
      .optional()
      .describe('Size of a linear bottleneck layer between the last recurrent layer and the output layer'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.type === 'lstmp' && c.projection == null) {
      ctx.addIssue({
        code: 'custom',
        path: ['projection'],
        message: 'expected projection > 0 for type lstmp, got none',
      })
    }
    if (c.type !== 'lstmp' && c.projection != null) {
      ctx.addIssue({
        code: 'custom',
        path: ['projection'],
        message: `projection applies to lstmp only, got type ${c.type}`,
      })
    }
    if (c.peepholes && c.type !== 'lstm' && c.type !== 'lstmp') {
      ctx.addIssue({
        code: 'custom',
        path: ['peepholes'],
        message: `peepholes apply to lstm/lstmp only, got type ${c.type}`,
      })
    }
  })
  .describe('Recurrent network on [batch, time, dim] chunks with a per-frame linear output layer')

export type RecurrentConfig = z.infer<typeof RecurrentConfigSchema>

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

export const recurrent = defineModelType({
  schema: RecurrentConfigSchema,
  input: 'chunks',
  inputDim: (featureDim) => featureDim,

  build(spec) {
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
      const shape = { T, B, H, reverse: d === 'bw' }
      if (cfg.type === 'lstm' && !cfg.peepholes) {
        // Input projection and recurrence in one op: one weight-gradient GEMM, fused step kernels on wasm.
        const [Wx, b, U] = (['Wx', 'b', 'U'] as const).map((n) => p[`${pre}.${n}`])
        return lstmLayer(x, Wx as tf.Tensor2D, b as tf.Tensor1D, U as tf.Tensor2D, { ...shape, inputGrad: l > 0 })
      }
      const xp = dense(x, p[`${pre}.Wx`] as tf.Tensor2D, p[`${pre}.b`] as tf.Tensor1D, 'linear', { inputGrad: l > 0 })
      const U = p[`${pre}.U`] as tf.Tensor2D
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
      params,
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
  },

  /**
   * LSTM → tf.layers.lstm, GRU → tf.layers.gru, RNN → tf.layers.simpleRNN, each wrapped in
   * tf.layers.bidirectional (concat) when bidirectional; peephole LSTM and LSTMP → the custom
   * KtpLSTM layer (import '<ktp>/stages/nn/export-layers.js' before loading). Then the optional
   * bottleneck Dense and the output Dense, applied per frame. Gate order is converted where tfjs
   * differs: ktp LSTM columns [i, f, o, g] → tfjs [i, f, c(=g), o]; GRU is [z, r, h] on both sides
   * and ktp's GRU computes tfjs' GRUCell (reset before the recurrent product, one bias). Recurrent
   * activation is set to 'sigmoid' explicitly: tfjs' default is hardSigmoid.
   */
  export(spec, flat, opts) {
    const cfg = spec.model
    const seq = tf.sequential()
    const weights: tf.Tensor[] = []
    const pushW = (name: string, shape: number[], values?: Float32Array) =>
      weights.push(tf.tensor(values ?? flat[name], shape))
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
      // zeros: the trained weights replace them at once; the default orthogonal initialiser costs time and warns
      const base = {
        units: H,
        returnSequences: true,
        activation: 'tanh' as const,
        recurrentInitializer: 'zeros' as const,
      }
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
      const G = gatesOf(cfg.type)
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
    seq.setWeights(weights)
    tf.dispose(weights)
    return seq
  },

  // Grow the stack one recurrent layer at a time; bottleneck and output layer start fresh each time.
  layerwise: {
    depth: (cfg) => cfg.layers,
    truncated: (cfg, layers) => ({ ...cfg, layers }),
    isLayerParam: (name) => name.startsWith('l'),
  },
})
