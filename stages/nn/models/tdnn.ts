/**
 * Time-delay neural network (Waibel et al. 1989; Peddinti et al. 2015, Kaldi's TDNN) on chunks of
 * frames: each layer sees its input at a few fixed frame offsets — a 1-D convolution over time whose
 * taps may be dilated ([-1, 2], [-3, 3]) — so the receptive field widens layer by layer with few
 * parameters. Then a per-frame linear output layer.
 *
 * A layer is "splice, then dense": the input [B, T, D] shifted by each offset is concatenated to
 * [B, T, K·D] and goes through `dense` (explicit-transpose gradients, ops.ts). The shifts are
 * stock slice + pad, whose gradients are pad + slice, so no transposed matMul reaches the backend.
 * Frames beyond a chunk's edges are zeros — the mean frame of mean-normalised features — for
 * training chunks and for a whole utterance at inference alike.
 *
 * Parameter names: `l{k}.{W,b}` (W [K·D, H]), `out.{W,b}`.
 */
import * as tf from '@tensorflow/tfjs'
import { z } from 'zod'
import { glorotUniform, paramSeed } from '../init.js'
import { defineModelType } from '../model.js'
import { dense } from '../ops.js'
import { ParamSet, type Params } from '../params.js'

export const TdnnConfigSchema = z
  .object({
    type: z.literal('tdnn').describe('Time-delay network on chunks: dilated 1-D convolutions over time'),
    hidden: z.array(z.number().int().positive()).min(1).describe('Units of each TDNN layer, input side first'),
    offsets: z
      .array(z.array(z.number().int()).min(1))
      .describe(
        "Per hidden layer, the frame offsets it splices from the layer below, e.g. [[-2,-1,0,1,2],[-1,2],[-3,3]] as Kaldi's TDNN",
      ),
    activation: z.enum(['sigmoid', 'tanh', 'relu']).default('relu').describe('Hidden-layer nonlinearity'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.offsets.length !== c.hidden.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['offsets'],
        message: `expected one offset list per hidden layer (${c.hidden.length}), got ${c.offsets.length}`,
      })
    }
    c.offsets.forEach((os, k) => {
      if (new Set(os).size !== os.length) {
        ctx.addIssue({ code: 'custom', path: ['offsets', k], message: `expected distinct offsets, got [${os}]` })
      }
    })
  })
  .describe('TDNN: spliced-offset layers over time → per-frame linear output logits')

export type TdnnConfig = z.infer<typeof TdnnConfigSchema>

/** x [B, T, D] moved by o frames: out[:, t] = x[:, t + o], zeros where t + o is outside the chunk. */
function shift(x: tf.Tensor3D, o: number): tf.Tensor3D {
  const [B, T, D] = x.shape
  if (o === 0) return x
  const n = T - Math.abs(o)
  if (n <= 0) return tf.zeros([B, T, D])
  return o > 0
    ? tf.pad(tf.slice(x, [0, o, 0], [B, n, D]), [
        [0, 0],
        [0, o],
        [0, 0],
      ])
    : tf.pad(tf.slice(x, [0, 0, 0], [B, n, D]), [
        [0, 0],
        [-o, 0],
        [0, 0],
      ])
}

export const tdnn = defineModelType({
  schema: TdnnConfigSchema,
  input: 'chunks',
  inputDim: (featureDim) => featureDim,

  build(spec) {
    const cfg = spec.model
    const init: [string, Float32Array, number[]][] = []
    const glorot = (name: string, a: number, b: number) =>
      init.push([name, glorotUniform(a, b, paramSeed(spec.seed, name)), [a, b]])
    let D = spec.inputDim
    cfg.hidden.forEach((H, k) => {
      glorot(`l${k}.W`, cfg.offsets[k].length * D, H)
      init.push([`l${k}.b`, new Float32Array(H), [H]])
      D = H
    })
    glorot('out.W', D, spec.numClasses)
    init.push(['out.b', new Float32Array(spec.numClasses), [spec.numClasses]])
    const params = new ParamSet(init)

    return {
      params,
      apply(x: tf.Tensor, p: Params = params.tensors()): tf.Tensor {
        if (x.rank !== 3 || x.shape[2] !== spec.inputDim) {
          throw new Error(`tdnn input: expected [batch, time, ${spec.inputDim}], got [${x.shape}]`)
        }
        const [B, T] = x.shape as [number, number, number]
        let h = x as tf.Tensor3D
        cfg.hidden.forEach((H, k) => {
          const taps = cfg.offsets[k].map((o) => shift(h, o))
          const spliced = taps.length === 1 ? taps[0] : tf.concat(taps, 2)
          const rows = tf.reshape(spliced, [B * T, spliced.shape[2]]) as tf.Tensor2D
          // Layer 0's input is data: no dX GEMM.
          const y = dense(rows, p[`l${k}.W`] as tf.Tensor2D, p[`l${k}.b`] as tf.Tensor1D, cfg.activation, {
            inputGrad: k > 0,
          })
          h = tf.reshape(y, [B, T, H])
        })
        const last = h.shape[2]
        const logits = dense(tf.reshape(h, [B * T, last]), p['out.W'] as tf.Tensor2D, p['out.b'] as tf.Tensor1D)
        return tf.reshape(logits, [B, T, spec.numClasses])
      },
    }
  },
  // No export: tfjs-layers has no layer for arbitrary (asymmetric, uneven) frame offsets.
})
