/** Public API of the numerical engine (models + gradients). See DESIGN §4. */
export { selectBackend, BACKEND_NAMES, type BackendName } from './backend.js'
export {
  ModelConfigSchema,
  ModelSpecSchema,
  DnnConfigSchema,
  RecurrentConfigSchema,
  type ModelConfig,
  type ModelSpec,
  type ModelSpecInput,
  type DnnConfig,
  type RecurrentConfig,
} from './config.js'
export type { Model } from './model.js'
export { buildModel, lossAndGrads, type LossAndGrads } from './registry.js'
export { ParamSet, sgdStep, type Params, type ParamSlot } from './params.js'
export {
  dense,
  activation,
  softmaxCrossEntropy,
  sparseSoftmaxCrossEntropy,
  custom,
  colSum,
  ACTIVATIONS,
  type Activation,
  type DenseOptions,
} from './ops.js'
export { lstmRecurrence, gruRecurrence, rnnRecurrence, type SeqShape, type LstmOptions } from './recurrence.js'
export { toLayersModel, permuteColumnBlocks, type ExportOptions } from './export.js'
export { KtpLSTM, type KtpLSTMArgs } from './export-layers.js'
export { gradCheck, type GradCheckOptions, type GradCheckResult, type GradCheckEntry } from './gradcheck.js'
export { glorotUniform, mulberry32, paramSeed } from './init.js'
