/**
 * Export a trained ktp model to a standard tfjs-layers model (tf.sequential), so a saved student
 * loads in plain @tensorflow/tfjs and predicts the same logits as ktp's forward pass. Each model
 * type writes its own layers (its registry entry's `export`, models/<type>.ts); peephole LSTM and
 * LSTMP use the custom KtpLSTM layer: import '<ktp>/stages/nn/export-layers.js' before loading.
 */
import type * as tf from '@tensorflow/tfjs'
import { KtpError } from '../../schemas/errors.js'
import type { ExportOptions, Model } from './model.js'
import { MODEL_TYPE_NAMES, modelType } from './registry.js'

export function toLayersModel(model: Model, opts: ExportOptions = {}): tf.Sequential {
  const { type } = model.spec.model
  const entry = modelType(type)
  if (entry.export == null) {
    const exportable = MODEL_TYPE_NAMES.filter((n) => modelType(n).export != null)
    throw new KtpError(
      'not-exportable',
      `model type ${type} has no tfjs-layers export (use ktp infer for its outputs); types with one: ${exportable.join('|')}`,
    )
  }
  return entry.export(model.spec, model.params.toFlat(), opts)
}
