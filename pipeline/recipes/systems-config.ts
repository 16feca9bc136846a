import { z } from 'zod'
import { decodeOptions } from '../../stages/decode/stage.js'
import { inferOptions } from '../../stages/infer/stage.js'
import { ModelConfigSchema } from '../../stages/nn/index.js'
import { teacherOptions } from '../../stages/train-teacher/stage.js'
import { OPTIMIZERS } from '../../stages/train/optimizer.js'
import { methodTrainOptions } from '../../stages/train/options.js'

/**
 * The configuration every recipe shares: the systems (teachers, soft targets, students), their
 * decoding, and the seeds. A task's schema (fsdd-config.ts, timit-config.ts) adds its data side.
 *
 * Every training option is declared once, by the training command's own zod schema: a recipe
 * field takes exactly the type and bounds the command accepts, and a change of bound there is a
 * change here. The recipe's defaults are its own (the full and quick configs), so the commands'
 * defaults are stripped and every field the recipe always passes is required.
 */

// The one place the recipes read training options from: the fragment ktp train and train-student
// share (stages/train/options.ts), and the teacher's own options.
const studentTraining = methodTrainOptions.shape
const teacherTraining = teacherOptions.shape

/** Hidden layer sizes of a DNN, input side first. */
const hiddenLayers = z.array(z.number().int().positive()).describe('hidden layer sizes, input side first')

export const teacherConfigSchema = z.strictObject({
  hidden: hiddenLayers,
  activation: z.enum(['sigmoid', 'tanh', 'relu']).describe('hidden-layer nonlinearity'),
  context: teacherTraining.context.unwrap(),
  lr: teacherTraining.lr.unwrap(),
  maxEpochs: teacherTraining.maxEpochs.unwrap(),
  minEpochs: teacherTraining.minEpochs.unwrap(),
  rbmEpochs: teacherTraining.rbmEpochs.unwrap(),
  batchSize: teacherTraining.batchSize.unwrap(),
  /** Train teachers on this fraction of the training utterances (sweeps; absent = all). */
  dataFraction: teacherTraining.dataFraction.unwrap().optional(),
})

/**
 * Options of `ktp train-student` that every recipe passes, in the order they go on its command
 * line (the order is part of each step's key, so it is fixed here rather than taken from a file).
 */
export const STUDENT_FLAGS = [
  'lr',
  'maxEpochs',
  'minEpochs',
  'ktLr',
  'ktMaxEpochs',
  'ktMinEpochs',
  'temperature',
  'alpha',
  'chunkLength',
  'chunksPerBatch',
  'layerEpochs',
  'optimizer',
] as const

/** Other `ktp train-student` options a recipe may set (`--set student.delay=5`); passed on only when set. */
export const STUDENT_EXTRA_FLAGS = [
  'delay',
  'bufferChunks',
  'shuffleMemory',
  'momentum',
  'l2',
  'clip',
  'startHalvingImpr',
  'endHalvingImpr',
  'fixedLr',
  'backend',
  'checkpointMinutes',
  'workers',
] as const

export const studentConfigSchema = z.strictObject({
  model: ModelConfigSchema.optional().describe(
    'the student network, any registered model type (stages/nn/models/); absent: an LSTM of cells × layers',
  ),
  cells: z.number().int().positive().describe('LSTM cells per layer'),
  layers: z.number().int().positive().describe('stacked LSTM layers'),
  lr: studentTraining.lr.unwrap(),
  maxEpochs: studentTraining.maxEpochs.unwrap(),
  minEpochs: studentTraining.minEpochs.unwrap(),
  ktLr: studentTraining.ktLr.unwrap(),
  ktMaxEpochs: studentTraining.ktMaxEpochs.unwrap(),
  ktMinEpochs: studentTraining.ktMinEpochs.unwrap(),
  temperature: studentTraining.temperature.unwrap(),
  alpha: studentTraining.alpha.unwrap(),
  chunkLength: studentTraining.chunkLength.unwrap(),
  chunksPerBatch: studentTraining.chunksPerBatch.unwrap(),
  layerEpochs: studentTraining.layerEpochs.unwrap(),
  optimizer: studentTraining.optimizer.unwrap(),
  dataFraction: studentTraining.dataFraction.unwrap(),
  delay: studentTraining.delay.unwrap().optional(),
  bufferChunks: studentTraining.bufferChunks.unwrap().optional(),
  shuffleMemory: studentTraining.shuffleMemory.unwrap().optional(),
  momentum: studentTraining.momentum.unwrap().optional(),
  l2: studentTraining.l2.unwrap().optional(),
  clip: studentTraining.clip.unwrap().optional(),
  startHalvingImpr: studentTraining.startHalvingImpr.unwrap().optional(),
  endHalvingImpr: studentTraining.endHalvingImpr.unwrap().optional(),
  fixedLr: studentTraining.fixedLr.unwrap().optional(),
  backend: studentTraining.backend.unwrap().optional(),
  checkpointMinutes: studentTraining.checkpointMinutes.unwrap().optional(),
  workers: studentTraining.workers.unwrap().optional(),
})

/** The students of every recipe, by system name (systems.ts lists them with their mode and teacher). */
export const STUDENT_NAMES = [
  'lstm-baseline',
  'lstm-kt',
  'lstm-kt-rbm',
  'lstm-regularise',
  'lstm-layerwise-kt',
] as const

const rates = z.strictObject({
  lrScale: z.number().positive().optional().describe("multiplies the recipe's SGD learning rates"),
  lr: z.number().positive().optional().describe('a constant learning rate instead'),
})

export const systemsConfigSchema = z.strictObject({
  seeds: z
    .array(studentTraining.seed.unwrap())
    .min(1)
    .refine((xs) => new Set(xs).size === xs.length, 'distinct seeds')
    .describe('training seeds; every system is trained once per seed'),
  teacher: teacherConfigSchema,
  soft: z.strictObject({ topK: inferOptions.shape.topK.unwrap(), dtype: inferOptions.shape.dtype.unwrap() }),
  student: studentConfigSchema,
  /** Per-system overrides of `student` (e.g. {"lstm-kt": {"temperature": 4}}). */
  students: z.partialRecord(z.enum(STUDENT_NAMES), studentConfigSchema.partial()),
  decode: z.strictObject({
    acousticScales: z.array(decodeOptions.shape.acousticScale.unwrap()).min(1),
    insertionPenalties: z.array(decodeOptions.shape.insertionPenalty.unwrap()).min(1),
    lm: decodeOptions.shape.lm.unwrap(),
  }),
  /** `ktp sweep`: learning rates per student optimiser (see sweep.ts); `ktp run` ignores it. */
  optimiserRates: z.partialRecord(z.enum(OPTIMIZERS), rates).optional(),
})

export type TeacherConfig = z.infer<typeof teacherConfigSchema>
export type StudentConfig = z.infer<typeof studentConfigSchema>
export type SystemsConfig = z.infer<typeof systemsConfigSchema>

/** The systems' settings of the full configurations (decoding is each task's own). */
export const SYSTEMS_FULL: Omit<SystemsConfig, 'decode'> = {
  seeds: [1, 2, 3],
  teacher: {
    hidden: [256, 256, 256],
    activation: 'sigmoid',
    context: 5,
    lr: 1,
    maxEpochs: 12,
    minEpochs: 4,
    rbmEpochs: 1,
    batchSize: 256,
  },
  soft: { topK: 8, dtype: 'f16' },
  student: {
    cells: 128,
    layers: 2,
    lr: 0.5,
    maxEpochs: 12,
    minEpochs: 4,
    ktLr: 0.5,
    ktMaxEpochs: 8,
    ktMinEpochs: 3,
    temperature: 2,
    alpha: 0.5,
    chunkLength: 20,
    chunksPerBatch: 16,
    layerEpochs: 2,
    optimizer: 'sgd',
    dataFraction: 1,
  },
  students: {},
}

/** Small enough for the demo (minutes on 2 cores), large enough that the systems differ. */
export const SYSTEMS_QUICK: Omit<SystemsConfig, 'decode'> = {
  ...SYSTEMS_FULL,
  seeds: [1],
  teacher: { ...SYSTEMS_FULL.teacher, hidden: [128, 128], maxEpochs: 5, minEpochs: 3 },
  student: {
    ...SYSTEMS_FULL.student,
    cells: 32,
    maxEpochs: 4,
    minEpochs: 3,
    ktMaxEpochs: 2,
    ktMinEpochs: 2,
    layerEpochs: 1,
  },
}
