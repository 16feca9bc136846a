import type { z } from 'zod'
import { KtpError } from '../../schemas/errors.js'
import { MODEL_TYPE_NAMES, copyMatchingParams, modelType } from '../nn/index.js'
import {
  type MethodTrainOptions,
  type TrainCliOptions,
  CHUNK_ONLY,
  FRAME_ONLY,
  type TrainingMode,
  methodOptions,
  methodTrainOptions,
  nonDefault,
  optionList,
  parseModelConfig,
} from './options.js'
import {
  type Phase,
  type TrainContext,
  accounting,
  buildFor,
  checkEarlierRun,
  finishModel,
  openTrainingData,
  reportSkipped,
  runPhases,
  scheduleFrom,
  spliceOf,
  trainingKeys,
  upToDate,
  useBackend,
  vetTrainingData,
} from './session.js'

/**
 * The training methods of ktp train and ktp train-student (options.ts names them): each is a list
 * of phases — target mix and schedule — run by runPhases, for any registered model type. Many
 * models may train at once from one soft-target file: each streams it, none copies it.
 */

/** The options a method reads besides the common ones (soft targets, temperature, its schedule…). */
const METHOD_READS: Record<TrainingMode, (keyof typeof methodOptions.shape)[]> = {
  baseline: [],
  kt: ['mode', 'soft', 'temperature', 'ktLr', 'ktMaxEpochs', 'ktMinEpochs'],
  regularise: ['mode', 'soft', 'temperature', 'alpha'],
  'layerwise-kt': ['mode', 'soft', 'temperature', 'ktLr', 'ktMaxEpochs', 'ktMinEpochs', 'layerEpochs'],
}

/**
 * What tells the two commands' models apart besides their defaults. Both keep what they did before
 * they shared this code, so that models already trained stay up to date and interrupted runs resume:
 * - the key (fingerprint and up-to-date check): ktp train keys the common options and those its
 *   method reads; train-student keys every option but the --soft of a baseline (the students of
 *   existing recipe directories are keyed so);
 * - the name of a baseline's one hard-label phase, which names its checkpoint file
 *   (checkpoint.<phase>.bin) and its log records: 'ce' for ktp train, 'finetune' for train-student.
 */
export interface TrainingCommand {
  stage: 'train' | 'train-student'
  key: (o: MethodTrainOptions) => Record<string, unknown>
  baselinePhase: string
}

export const TRAIN: TrainingCommand = {
  stage: 'train',
  key: (o) => {
    const key: Record<string, unknown> = { ...o }
    for (const k of Object.keys(methodOptions.shape)) delete key[k]
    for (const k of METHOD_READS[o.mode]) key[k] = o[k]
    return key
  },
  baselinePhase: 'ce',
}

export const TRAIN_STUDENT: TrainingCommand = {
  stage: 'train-student',
  key: (o) => {
    const key: Record<string, unknown> = { ...o }
    if (o.mode === 'baseline') delete key.soft
    return key
  },
  baselinePhase: 'finetune',
}

/**
 * Options the run will not read, set to something else than their defaults: `--soft` in baseline
 * mode is refused (a user who gives soft targets means a KT run), the others are warned about —
 * recipes pass every student option to every mode, so they cannot be refused.
 */
function ignoredOptionsCheck(
  stage: string,
  o: MethodTrainOptions,
  schema: z.ZodObject,
  input: 'frames' | 'chunks',
  log: (l: string) => void,
): void {
  const reads = new Set<string>(METHOD_READS[o.mode])
  const methodIgnored = nonDefault(
    schema,
    o,
    Object.keys(methodOptions.shape).filter((k) => k !== 'mode' && !reads.has(k)),
  )
  if (o.mode === 'baseline' && o.soft !== undefined)
    throw new KtpError(
      'usage',
      `${optionList(methodIgnored)} no effect in --mode baseline (hard labels only): drop them, or choose --mode kt, regularise or layerwise-kt`,
    )
  if (methodIgnored.length) log(`ktp ${stage}: WARNING ${optionList(methodIgnored)} no effect in --mode ${o.mode}`)
  const layout = nonDefault(schema, o, input === 'frames' ? CHUNK_ONLY : FRAME_ONLY)
  if (layout.length)
    log(
      `ktp ${stage}: WARNING ${optionList(layout)} no effect on a ${input === 'frames' ? 'frame model (spliced frames)' : 'chunk model (recurrent, tdnn)'}`,
    )
  if (o.optimizer !== 'momentum') {
    const m = nonDefault(schema, o, ['momentum'])
    if (m.length) log(`ktp ${stage}: WARNING ${optionList(m)} no effect with --optimizer ${o.optimizer}`)
  }
}

function ktSchedule(o: MethodTrainOptions) {
  return { ...scheduleFrom(o), initialLr: o.ktLr, maxEpochs: o.ktMaxEpochs, minEpochs: o.ktMinEpochs }
}

/** Train a model by `o.mode` and write it to `cli.output`. Returns the exit code. */
export async function runMethod(
  command: TrainingCommand,
  o: MethodTrainOptions,
  cli: TrainCliOptions,
  log: (l: string) => void,
  schema: z.ZodObject = methodTrainOptions,
): Promise<number> {
  const { stage } = command
  const out = cli.output
  const config = parseModelConfig(o.model)
  const needsSoft = o.mode !== 'baseline'
  if (needsSoft && !o.soft) throw new KtpError('usage', `--mode ${o.mode} needs --soft (soft targets from ktp infer)`)
  const layerwise = modelType(config.type).layerwise
  if (o.mode === 'layerwise-kt' && !(layerwise && layerwise.depth(config) >= 2)) {
    const growable = MODEL_TYPE_NAMES.filter((n) => modelType(n).layerwise != null)
    throw new KtpError(
      'usage',
      `--mode layerwise-kt needs a --model that grows layer by layer (${growable.join('|')}) with at least 2 layers, got ${JSON.stringify(config)}`,
    )
  }
  ignoredOptionsCheck(stage, o, schema, modelType(config.type).input, log)
  const soft = needsSoft ? o.soft : undefined
  const data = await openTrainingData(o, soft)
  const keys = trainingKeys(stage, command.key(o), data.inputFingerprints)
  if (!cli.force && upToDate(out, keys.build)) {
    log(`ktp ${stage}: ${out} is up to date, nothing to do`)
    return 0
  }
  checkEarlierRun(stage, out, keys.fingerprint, cli, log)
  await vetTrainingData(data, o)
  reportSkipped(stage, data, log)
  await useBackend(o.backend, log)
  const ctx: TrainContext = { out, opts: o, data, soft, fingerprint: keys.fingerprint, resume: cli.resume, log }
  const ce: Phase = { name: 'finetune', targets: { hard: 1, soft: 0, temperature: 1 }, schedule: scheduleFrom(o) }
  const kt: Phase = { name: 'kt', targets: { hard: 0, soft: 1, temperature: o.temperature }, schedule: ktSchedule(o) }
  const model = buildFor(config, data, o)
  let phases: Phase[]
  if (o.mode === 'baseline') phases = [{ ...ce, name: command.baselinePhase }]
  else if (o.mode === 'kt') phases = [kt, ce]
  else if (o.mode === 'regularise')
    phases = [
      {
        name: 'regularise',
        targets: { hard: o.alpha, soft: 1 - o.alpha, temperature: o.temperature },
        schedule: scheduleFrom(o),
      },
    ]
  else {
    // layerwise-kt: KT-train 1, 2, … layers, each stage starting from the layers of the one before
    const lw = layerwise!
    const skip = (p: string) => !lw.isLayerParam(p)
    let carried: Record<string, Float32Array> = {}
    for (let n = 1; n < lw.depth(config); n++) {
      const partial = buildFor(lw.truncated(config, n), data, o)
      copyMatchingParams(carried, partial, skip)
      await runPhases(
        partial,
        [
          {
            ...kt,
            name: `kt-layers${n}`,
            schedule: { ...ktSchedule(o), maxEpochs: o.layerEpochs, minEpochs: o.layerEpochs, fixed: true },
          },
        ],
        ctx,
      )
      carried = partial.params.toFlat()
      partial.params.dispose()
    }
    copyMatchingParams(carried, model, skip)
    phases = [kt, ce]
  }
  const { records } = await runPhases(model, phases, ctx)
  finishModel(ctx, model, keys, { stage, options: command.key(o), epochs: records }, spliceOf(model, o))
  const last = records.filter((r) => r.phase === phases[phases.length - 1].name && r.accepted)
  const { line, code } = accounting(data)
  log(
    `ktp ${stage}: wrote ${out} (${o.mode}; best held-out frame accuracy ${Math.max(...last.map((r) => r.heldout_accuracy)).toFixed(2)}%); ${line}`,
  )
  model.params.dispose()
  return code
}
