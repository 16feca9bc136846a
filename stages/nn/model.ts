/** The common shape of every model: a parameter set plus a forward function over it. */
import type * as tf from '@tensorflow/tfjs'
import type { ModelSpec } from './config.js'
import type { ParamSet, Params } from './params.js'

export interface Model {
  readonly spec: ModelSpec
  readonly params: ParamSet
  /** 'frame': x [N, D] → logits [N, C]. 'sequence': x [B, T, D] → logits [B, T, C]. */
  readonly input: 'frame' | 'sequence'
  /** Logits. `p` substitutes parameter tensors (gradient checks, workers); default the variables. */
  apply(x: tf.Tensor, p?: Params): tf.Tensor
}
