/** Build a model from its JSON spec, and the loss/gradient entry point the trainer uses. */
import * as tf from '@tensorflow/tfjs'
import { ModelSpecSchema, type DnnConfig, type ModelSpecInput, type RecurrentConfig } from './config.js'
import { buildDnn } from './dnn.js'
import type { Model } from './model.js'
import { softmaxCrossEntropy } from './ops.js'
import type { Params } from './params.js'
import { buildRecurrent } from './rnn.js'

/** Validate a spec (throws a zod error naming the bad field) and build the model. */
export function buildModel(input: ModelSpecInput): Model {
  const parsed = ModelSpecSchema.safeParse(input)
  if (!parsed.success) {
    const msg = parsed.error.issues.map((i) => `${i.path.join('.') || '(spec)'}: ${i.message}`).join('; ')
    throw new Error(`invalid model spec: ${msg}`)
  }
  const spec = parsed.data
  if (spec.model.type === 'dnn') return buildDnn({ ...spec, model: spec.model as DnnConfig })
  return buildRecurrent({ ...spec, model: spec.model as RecurrentConfig })
}

export interface LossAndGrads {
  /** Frame-averaged soft-target cross-entropy. */
  loss: tf.Scalar
  /** One gradient per parameter name. */
  grads: Params
}

/**
 * Loss and parameter gradients for one batch: x as `model.input` says, targets [..., C] with the
 * logits' shape, weights [...] per frame (optional mask). The caller disposes the result (or wraps
 * the call and the optimiser step in tf.tidy).
 */
export function lossAndGrads(
  model: Model,
  x: tf.Tensor,
  targets: tf.Tensor,
  weights?: tf.Tensor,
  p?: Params,
): LossAndGrads {
  const names = model.params.names
  const base = p ?? model.params.tensors()
  const f = (...ts: tf.Tensor[]): tf.Scalar => {
    const sub: Params = {}
    names.forEach((n, i) => {
      sub[n] = ts[i]
    })
    return softmaxCrossEntropy(model.apply(x, sub), targets, weights)
  }
  const { value, grads } = tf.valueAndGrads(f)(names.map((n) => base[n]))
  const out: Params = {}
  names.forEach((n, i) => {
    out[n] = grads[i]
  })
  return { loss: value, grads: out }
}
