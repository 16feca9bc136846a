import { existsSync, readFileSync } from 'node:fs'
import { z } from 'zod'
import { KtpError } from '../../schemas/errors.js'
import { BACKEND_NAMES, type BackendName, MODEL_TYPE_NAMES, type ModelConfig, ModelConfigSchema } from '../nn/index.js'
import { OPTIMIZERS } from './optimizer.js'

/**
 * The options of the training commands, each declared once: what to train on and how
 * (`trainOptions`, shared by ktp train, train-teacher and train-student), the training method
 * (`methodOptions`: --mode and the knowledge-transfer options, shared by ktp train and
 * train-student), and where the model goes (`trainCliOptions`).
 */
export const schedulerOptions = {
  lr: z
    .number()
    .positive()
    .default(0.008)
    .describe('initial learning rate (newbob halves it when held-out accuracy stalls)'),
  minEpochs: z.number().int().min(0).default(2).describe('newbob: no early stop before this many epochs'),
  maxEpochs: z.number().int().min(1).default(20).describe('newbob: stop after this many epochs'),
  startHalvingImpr: z
    .number()
    .default(0.5)
    .describe('newbob: start halving when held-out accuracy improves by less than this (points)'),
  endHalvingImpr: z
    .number()
    .default(0.1)
    .describe('newbob: stop when, while halving, it improves by less than this (points)'),
  fixedLr: z
    .boolean()
    .default(false)
    .describe('keep the learning rate fixed for exactly --max-epochs epochs (no newbob)'),
}

export const trainOptions = z.object({
  feats: z.string().describe('training features (features@1 Arrow file, CMVN applied, not spliced)'),
  labels: z.string().describe('training frame labels (labels@1 Arrow file)'),
  heldoutFeats: z.string().optional().describe('held-out features for newbob and reporting (e.g. a dev speaker)'),
  heldoutLabels: z.string().optional().describe('held-out frame labels'),
  heldoutFraction: z
    .number()
    .min(0)
    .max(0.9)
    .default(0.1)
    .describe('without held-out files: this fraction of training utterances (by id hash) is held out'),
  dataFraction: z
    .number()
    .gt(0)
    .max(1)
    .default(1)
    .describe(
      'train on this fraction of the training utterances (deterministic by id hash; smaller fractions are subsets of larger ones)',
    ),
  utt2spk: z
    .string()
    .optional()
    .describe(
      "Kaldi utt2spk of the training data: --data-fraction then takes that fraction of each speaker's utterances (balanced, still nested)",
    ),
  model: z
    .string()
    .default('{"type":"dnn","hidden":[512,512,512,512],"activation":"sigmoid"}')
    .describe(
      `model config as JSON, or a path to a JSON file: {"type":"${MODEL_TYPE_NAMES.join('|')}", …} (docs/ARCHITECTURE.md §9; ktp train --help has examples)`,
    ),
  context: z
    .number()
    .int()
    .min(0)
    .default(5)
    .describe('frame models (dnn): splice ±K frames of context around each frame on the fly (chunk models: unused)'),
  batchSize: z.number().int().positive().default(256).describe('frame models: frames per mini-batch'),
  bufferFrames: z.number().int().positive().default(100000).describe('frame models: shuffle buffer, in frames'),
  chunkLength: z.number().int().positive().default(20).describe('chunk models (recurrent, tdnn): frames per chunk'),
  chunksPerBatch: z.number().int().positive().default(16).describe('chunk models: chunks per mini-batch'),
  bufferChunks: z.number().int().positive().default(4096).describe('chunk models: shuffle buffer, in chunks'),
  delay: z.number().int().min(0).default(0).describe('chunk models: target delay in frames'),
  shuffleMemory: z
    .number()
    .min(0)
    .default(2048)
    .describe(
      'MB of memory for the training corpus (features, soft targets, labels): if it fits, it is read once and the utterance order is shuffled every epoch; if not, utterances are read in file order and mixed only within the shuffle buffer (0: always file order)',
    ),
  optimizer: z.enum(OPTIMIZERS).default('sgd').describe("sgd (the paper's setting), momentum, or adam"),
  momentum: z.number().min(0).max(0.999).default(0.9).describe('momentum coefficient (--optimizer momentum)'),
  l2: z.number().min(0).default(0).describe('L2 weight decay'),
  clip: z.number().default(5).describe('clip the global gradient norm to this (≤ 0: off; the NaN guard stays on)'),
  ...schedulerOptions,
  seed: z.number().int().default(1).describe('seed of initialisation and data order'),
  backend: z
    .enum(BACKEND_NAMES as unknown as [BackendName, ...BackendName[]])
    .default('auto')
    .describe('tfjs backend: auto picks tensorflow (tfjs-node[-gpu]) if installed, else wasm, else cpu'),
  checkpointMinutes: z
    .number()
    .positive()
    .default(5)
    .describe('write a checkpoint at least this often (and after every epoch)'),
  workers: z
    .number()
    .int()
    .min(1)
    .max(64)
    .default(1)
    .describe(
      'threads per training step (data parallel: each computes the gradient of a contiguous part of the batch; results match 1 thread up to float rounding)',
    ),
})
export type TrainOptions = z.infer<typeof trainOptions>

/**
 * Options that do not change the result: they stay out of the model fingerprint. --shuffle-memory
 * is a memory limit: it decides whether the utterance order is shuffled only through the size of
 * the corpus, and raising it on a machine with more memory should not make a model stale.
 */
export const NON_VALUE_OPTIONS = ['backend', 'checkpointMinutes', 'workers', 'shuffleMemory'] as const

/** The --model option: a model config as JSON, or a path to a JSON file, validated by the registry. */
export function parseModelConfig(s: string): ModelConfig {
  const text = s.trim().startsWith('{')
    ? s
    : (() => {
        if (!existsSync(s)) throw new KtpError('usage', `--model: '${s}' is neither JSON nor an existing file`)
        return readFileSync(s, 'utf8')
      })()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new KtpError('usage', `--model: not valid JSON (${(err as Error).message})`)
  }
  const r = ModelConfigSchema.safeParse(json)
  if (!r.success)
    throw new KtpError(
      'usage',
      `--model: ${r.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`).join('; ')}`,
    )
  return r.data
}

/**
 * The training methods (Tang et al., arXiv:1506.02256, and its baselines), the same words with the
 * same meaning for ktp train and ktp train-student:
 *   baseline      hard-label cross-entropy from random initialisation;
 *   kt            knowledge-transfer pre-training on the teacher's soft targets (T²·KL per frame, at
 *                 temperature T) with its own schedule (--kt-*), then fine-tuning on hard labels;
 *   regularise    α·CE + (1−α)·T²·KL throughout;
 *   layerwise-kt  grow the model one layer at a time, KT-pre-training each stage, then as kt.
 */
export const TRAINING_MODES = ['baseline', 'kt', 'regularise', 'layerwise-kt'] as const
export type TrainingMode = (typeof TRAINING_MODES)[number]

/** --mode, without its default (the commands differ there); `ce` is the old ktp train spelling of baseline. */
export const modeOption = z
  .enum([...TRAINING_MODES, 'ce'])
  .describe(
    [
      'training method:',
      '  baseline: hard-label cross-entropy from random initialisation',
      "  kt: KT pre-training on the teacher's soft targets (--kt-*), then fine-tuning",
      '  regularise: α·CE + (1−α)·T²·KL throughout (--alpha)',
      '  layerwise-kt: kt, growing the model a layer at a time (--layer-epochs)',
      '  ce: the old spelling of baseline',
    ].join('\n'),
  )
  .transform((m): TrainingMode => (m === 'ce' ? 'baseline' : m))

export const methodOptions = z.object({
  mode: modeOption.default('baseline'),
  soft: z.string().optional().describe('soft targets from ktp infer (kt, regularise, layerwise-kt)'),
  temperature: z
    .number()
    .positive()
    .default(2)
    .describe("temperature T for the soft targets and the student's softened outputs"),
  alpha: z.number().min(0).max(1).default(0.5).describe('regularise: weight α of the hard-label cross-entropy'),
  ktLr: z.number().positive().default(0.008).describe('KT pre-training: initial learning rate'),
  ktMaxEpochs: z.number().int().min(1).default(10).describe('KT pre-training: most epochs'),
  ktMinEpochs: z.number().int().min(0).default(2).describe('KT pre-training: no early stop before this many epochs'),
  layerEpochs: z
    .number()
    .int()
    .min(1)
    .default(2)
    .describe('layerwise-kt: KT epochs for each intermediate (shallower) model'),
})
export type MethodOptions = z.infer<typeof methodOptions>

/** Everything ktp train and ktp train-student read. */
export const methodTrainOptions = trainOptions.extend(methodOptions.shape)
export type MethodTrainOptions = z.infer<typeof methodTrainOptions>

/** Where the model goes, and whether to resume or retrain: not part of what is trained. */
export const trainCliOptions = z.object({
  output: z.string().describe('model directory to write (ktp.json, params.bin, train.jsonl)'),
  resume: z.boolean().default(false).describe('continue from the last checkpoint in the output directory'),
  force: z.boolean().default(false).describe('train even if the model is up to date'),
})
export type TrainCliOptions = z.infer<typeof trainCliOptions>

/**
 * The options of `names` that were set away from their defaults in `o` (a value the run will not
 * read was asked for): `--kebab-name value` each. An optional option without a default counts when
 * given at all.
 */
export function nonDefault(schema: z.ZodObject, o: Record<string, unknown>, names: readonly string[]): string[] {
  const out: string[] = []
  for (const k of names) {
    const field = schema.shape[k] as z.ZodType | undefined
    if (!field || o[k] === undefined) continue
    const d = field.safeParse(undefined)
    if (d.success && JSON.stringify(d.data) === JSON.stringify(o[k])) continue
    out.push(
      `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${typeof o[k] === 'string' ? o[k] : JSON.stringify(o[k])}`,
    )
  }
  return out
}

/** The layout options only frame models (spliced frames) read, and those only chunk models read. */
export const FRAME_ONLY = ['context', 'batchSize', 'bufferFrames'] as const
export const CHUNK_ONLY = ['chunkLength', 'chunksPerBatch', 'bufferChunks', 'delay'] as const

/** "--a 1 and --b 2 have" / "--a 1 has": the subject of a warning about options without effect. */
export function optionList(opts: string[]): string {
  return opts.length === 1 ? `${opts[0]} has` : `${opts.slice(0, -1).join(', ')} and ${opts[opts.length - 1]} have`
}
