/**
 * The public face of the numerical engine (models, their registry, ops and gradients). Code outside
 * stages/nn imports nn through this file only — or through init.ts, the seeded random numbers, which
 * is free of tfjs so that a stage that only shuffles need not load the engine (~1.3 s).
 * test/nn-registry.test.ts holds the rule.
 */
export { selectBackend, BACKEND_NAMES, type BackendName } from './backend.js'
export {
  defineModelType,
  type BuiltModel,
  type ExportOptions,
  type Model,
  type ModelInput,
  type ModelSpecOf,
  type ModelType,
} from './model.js'
export {
  MODEL_TYPES,
  MODEL_TYPE_NAMES,
  ModelConfigSchema,
  ModelSpecSchema,
  buildModel,
  modelType,
  type ModelConfig,
  type ModelConfigInput,
  type ModelSpec,
  type ModelSpecInput,
} from './registry.js'
export { DnnConfigSchema, dnnLayerName, dnnSizes, type DnnConfig } from './models/dnn.js'
export { RecurrentConfigSchema, permuteColumnBlocks, type RecurrentConfig } from './models/recurrent.js'
export { ParamSet, sgdStep, type Params, type ParamSlot } from './params.js'
export {
  dense,
  activation,
  softmaxCrossEntropy,
  sparseSoftmaxCrossEntropy,
  custom,
  colSum,
  inputGradient,
  matMulAT,
  matMulBT,
  ACTIVATIONS,
  type Activation,
  type DenseOptions,
} from './ops.js'
export { lstmRecurrence, gruRecurrence, rnnRecurrence, type SeqShape, type LstmOptions } from './recurrence.js'
export { lstmLayer, type LstmLayerOptions } from './lstm-layer.js'
export { fusedLstmAvailable, lstmCellBackward, lstmCellForward, type CellState } from './lstm-kernels.js'
export { toLayersModel } from './export.js'
export { KtpLSTM, type KtpLSTMArgs } from './export-layers.js'
export { gradCheck, type GradCheckOptions, type GradCheckResult, type GradCheckEntry } from './gradcheck.js'
export { MAX_PARAMS, ModelTooLarge, glorotUniform, mulberry32, paramSeed, uniform } from './init.js'
export {
  cd1,
  createRbm,
  disposeRbm,
  rbmHidden,
  rbmMomentum,
  type Cd1Step,
  type Rbm,
  type VisibleType,
} from './rbm.js'
export { copyMatchingParams } from './stack.js'
export { framePasses, type PassPiece } from './frame-passes.js'
export { OrtDnn, dnnToOnnx, onnxRuntimeAvailable } from './onnx.js'
