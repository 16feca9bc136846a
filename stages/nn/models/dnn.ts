/** Feed-forward acoustic model on (spliced) frames: input → hidden (sigmoid|tanh|relu) → linear logits. */
import * as tf from '@tensorflow/tfjs'
import { z } from 'zod'
import { glorotUniform, paramSeed } from '../init.js'
import { defineModelType } from '../model.js'
import { dense } from '../ops.js'
import { ParamSet, type Params } from '../params.js'

export const DnnConfigSchema = z
  .object({
    type: z.literal('dnn').describe('Feed-forward network on (spliced) frames'),
    hidden: z
      .array(z.number().int().positive())
      .describe('Hidden layer sizes, input side first; [] gives a linear (softmax regression) model'),
    activation: z.enum(['sigmoid', 'tanh', 'relu']).default('sigmoid').describe('Hidden-layer nonlinearity'),
  })
  .strict()
  .describe('DNN: input → hidden layers → linear output logits')

export type DnnConfig = z.infer<typeof DnnConfigSchema>

/** Layer sizes from input to output: [D, h1, …, C]. */
export function dnnSizes(cfg: DnnConfig, inputDim: number, numClasses: number): number[] {
  return [inputDim, ...cfg.hidden, numClasses]
}

/** Parameter name of layer l (the last layer is the output layer `out`). */
export function dnnLayerName(l: number, numLayers: number): string {
  return l === numLayers - 1 ? 'out' : `h${l}`
}

export const dnn = defineModelType({
  schema: DnnConfigSchema,
  input: 'frames',
  // ±context frames spliced around each frame
  inputDim: (featureDim, context) => featureDim * (2 * context + 1),

  build(spec) {
    const cfg = spec.model
    const sizes = dnnSizes(cfg, spec.inputDim, spec.numClasses)
    const L = sizes.length - 1
    const init: [string, Float32Array, number[]][] = []
    for (let l = 0; l < L; l++) {
      const name = dnnLayerName(l, L)
      init.push([
        `${name}.W`,
        glorotUniform(sizes[l], sizes[l + 1], paramSeed(spec.seed, `${name}.W`)),
        [sizes[l], sizes[l + 1]],
      ])
      init.push([`${name}.b`, new Float32Array(sizes[l + 1]), [sizes[l + 1]]])
    }
    const params = new ParamSet(init)
    return {
      params,
      apply(x: tf.Tensor, p: Params = params.tensors()): tf.Tensor {
        if (x.rank !== 2 || x.shape[1] !== spec.inputDim) {
          throw new Error(`DNN input: expected [N, ${spec.inputDim}], got [${x.shape}]`)
        }
        let h = x as tf.Tensor2D
        for (let l = 0; l < L; l++) {
          const name = dnnLayerName(l, L)
          const act = l === L - 1 ? 'linear' : cfg.activation
          // Layer 0's input is data: no dX GEMM.
          h = dense(h, p[`${name}.W`] as tf.Tensor2D, p[`${name}.b`] as tf.Tensor1D, act, { inputGrad: l > 0 })
        }
        return h
      },
    }
  },

  /** Dense layers, one per ktp layer. */
  export(spec, flat, opts) {
    const cfg = spec.model
    const sizes = dnnSizes(cfg, spec.inputDim, spec.numClasses)
    const L = sizes.length - 1
    const seq = tf.sequential()
    const weights: tf.Tensor[] = []
    for (let l = 0; l < L; l++) {
      const last = l === L - 1
      const activation = last ? (opts.softmax ? 'softmax' : 'linear') : cfg.activation
      seq.add(tf.layers.dense({ units: sizes[l + 1], activation, ...(l === 0 ? { inputShape: [spec.inputDim] } : {}) }))
      const name = dnnLayerName(l, L)
      weights.push(tf.tensor(flat[`${name}.W`], [sizes[l], sizes[l + 1]]), tf.tensor(flat[`${name}.b`], [sizes[l + 1]]))
    }
    seq.setWeights(weights)
    tf.dispose(weights)
    return seq
  },
})
