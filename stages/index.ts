/**
 * ktp as a library: what `import … from 'ktp'` gives (package.json "exports"). Every `ktp` command
 * is a stage here — its zod options (the same declaration the CLI is generated from, so library
 * and CLI validate alike) and the function its command.ts calls — plus the Arrow plumbing to run
 * a stage resumably, the data contract (schemas, fingerprints) and the numerical engine under
 * `nn`. Only this file is exported: deeper modules may move between releases. Importing it loads
 * tfjs (about a second), as every training and inference stage needs it.
 *
 * A stage with a `plan…` function returns a StagePlan for `runStage` (the runner every command
 * uses: resume, shards, up-to-date outputs, "done N, failed M"); the others run to completion.
 */

// Arrow → Arrow stages
export { featuresOptions, featuresStage, planFeatures, type FeaturesOptions } from './features/stage.js'
export {
  applyCmvn,
  cmvnApplyOptions,
  cmvnCompute,
  cmvnComputeOptions,
  parseStats,
  planCmvnApply,
  type CmvnApplyOptions,
  type CmvnComputeOptions,
  type CmvnStats,
} from './cmvn/stage.js'
export { planSplice, spliceFrames, spliceOptions, spliceStage, type SpliceOptions } from './splice/stage.js'
export { labelsOptions, planLabels, type LabelsOptions } from './labels/stage.js'
export { alignOptions, planAlign, type AlignOptions } from './align/stage.js'
export { inferOptions, inferStage, planInfer, type InferOptions } from './infer/stage.js'
export { catOptions, planCat, type CatOptions } from './cat/stage.js'
export { planMerge } from './merge/stage.js'

// data preparation, HMMs, decoding and scoring
export { PREPARE_FORMATS, prepare, prepareOptions, type PrepareOptions } from './prepare/stage.js'
export { connectDigits, connectDigitsOptions, type ConnectDigitsOptions } from './connect-digits/stage.js'
export { hmmInit } from './hmm-init/stage.js'
export { hmmUpdate, hmmUpdateOptions, type HmmUpdateOptions } from './hmm-update/stage.js'
export { decodeFiles, decodeOptions, type DecodeOptions } from './decode/stage.js'
export { scoreFiles, scoreOptions, type ScoreOptions } from './score/stage.js'
export { formatInfo, summarize } from './info/stage.js'

// training: teachers, students (the methods of Tang et al.), and the engine
export { runTrainTeacher, teacherOptions, type TeacherOptions } from './train-teacher/stage.js'
export { runTrainStudent, studentOptions, type StudentOptions } from './train-student/stage.js'
export * as nn from './nn/index.js'

// plumbing and the data contract
export {
  arrowInput,
  runStage,
  type StageInput,
  type StageResult,
  type StageRun,
  type Transform,
} from '../pipeline/io/run-stage.js'
export { openArrow, type ArrowSource } from '../pipeline/io/arrow-source.js'
export { BatchEncoder } from '../pipeline/io/arrow-encoder.js'
export type { StagePlan } from '../pipeline/io/command.js'
export { KINDS, makeSchema, validateSchema } from '../schemas/kinds.js'
export { fingerprint } from '../schemas/fingerprint.js'
export { KtpError, UttError } from '../schemas/errors.js'
