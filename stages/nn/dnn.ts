/** Feed-forward acoustic model: input → hidden (sigmoid|tanh|relu) → linear logits. */
import type * as tf from '@tensorflow/tfjs'
import type { DnnConfig, ModelSpec } from './config.js'
import { glorotUniform, paramSeed } from './init.js'
import type { Model } from './model.js'
import { dense } from './ops.js'
import { ParamSet, type Params } from './params.js'

/** Layer sizes from input to output: [D, h1, …, C]. */
export function dnnSizes(cfg: DnnConfig, inputDim: number, numClasses: number): number[] {
  return [inputDim, ...cfg.hidden, numClasses]
}

/** Parameter name of layer l (the last layer is the output layer `out`). */
export function dnnLayerName(l: number, numLayers: number): string {
  return l === numLayers - 1 ? 'out' : `h${l}`
}

export function buildDnn(spec: ModelSpec & { model: DnnConfig }): Model {
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
    spec,
    params,
    input: 'frame',
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
}
