import { z } from 'zod'
import { KtpError } from '../../schemas/errors.js'
import { type RecurrentConfig, copyMatchingParams } from '../nn/index.js'
import {
  type Phase,
  type TrainContext,
  type TrainOptions,
  buildFor,
  finishModel,
  openTrainingData,
  parseModelConfig,
  runPhases,
  scheduleFrom,
  trainOptions,
  trainingKeys,
  upToDate,
  useBackend,
} from '../train/session.js'

/**
 * `ktp train-student`: the method of Tang et al. (arXiv:1506.02256) and its baselines, for any
 * student (recurrent by default):
 *   baseline      hard-label cross-entropy from random initialisation;
 *   kt            knowledge-transfer pre-training on the teacher's soft targets (T²·KL per frame, at
 *                 temperature T) with its own epochs and schedule, then fine-tuning on hard labels;
 *   regularise    α·CE + (1−α)·T²·KL throughout;
 *   layerwise-kt  grow the student one recurrent layer at a time, KT-pre-training each stage, then
 *                 fine-tune the whole on hard labels.
 * Many students may train at once from one soft-target file: each streams it, none copies it.
 */
export const studentOptions = trainOptions
  .extend({
    mode: z
      .enum(['baseline', 'kt', 'regularise', 'layerwise-kt'])
      .default('kt')
      .describe('training method (see above)'),
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
      .describe('layerwise-kt: KT epochs for each intermediate (shallower) student'),
  })
  .extend({
    model: trainOptions.shape.model.default('{"type":"lstm","cells":256,"layers":2}'),
    context: trainOptions.shape.context.default(0),
  })
export type StudentOptions = z.infer<typeof studentOptions>

function ktSchedule(o: StudentOptions) {
  return { ...scheduleFrom(o), initialLr: o.ktLr, maxEpochs: o.ktMaxEpochs, minEpochs: o.ktMinEpochs }
}

export async function runTrainStudent(
  o: StudentOptions,
  out: string,
  resume: boolean,
  force: boolean,
  log: (l: string) => void,
): Promise<number> {
  const config = parseModelConfig(o.model)
  const needsSoft = o.mode !== 'baseline'
  if (needsSoft && !o.soft) throw new KtpError('usage', `--mode ${o.mode} needs --soft (soft targets from ktp infer)`)
  const soft = needsSoft ? o.soft : undefined
  const data = await openTrainingData(o, soft)
  const keyOpts: Record<string, unknown> = { ...o }
  if (!needsSoft) delete keyOpts.soft
  const keys = trainingKeys('train-student', keyOpts, data.inputFingerprints)
  if (!force && upToDate(out, keys.build)) {
    log(`ktp train-student: ${out} is up to date, nothing to do`)
    return 0
  }
  await useBackend(o.backend, log)
  const ctx: TrainContext = { out, opts: o as TrainOptions, data, soft, fingerprint: keys.fingerprint, resume, log }
  const ce: Phase = { name: 'finetune', targets: { hard: 1, soft: 0, temperature: 1 }, schedule: scheduleFrom(o) }
  const kt: Phase = { name: 'kt', targets: { hard: 0, soft: 1, temperature: o.temperature }, schedule: ktSchedule(o) }
  const model = buildFor(config, data, o)
  let phases: Phase[]
  if (o.mode === 'baseline') phases = [ce]
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
    const rc = config as RecurrentConfig
    if (!('layers' in rc) || rc.layers < 2)
      throw new KtpError('usage', '--mode layerwise-kt needs a recurrent --model with layers ≥ 2')
    let carried: Record<string, Float32Array> = {}
    for (let n = 1; n < rc.layers; n++) {
      const partial = buildFor({ ...rc, layers: n }, data, o)
      copyMatchingParams(carried, partial, (p) => !p.startsWith('l'))
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
    copyMatchingParams(carried, model, (p) => !p.startsWith('l'))
    phases = [kt, ce]
  }
  const { records } = await runPhases(model, phases, ctx)
  const splice = model.input === 'frames' ? { left: o.context, right: o.context } : { left: 0, right: 0 }
  finishModel(ctx, model, keys, { stage: 'train-student', options: o, epochs: records }, splice)
  const last = records.filter((r) => r.phase === phases[phases.length - 1].name && r.accepted)
  log(
    `ktp train-student: wrote ${out} (${o.mode}; best held-out frame accuracy ${Math.max(...last.map((r) => r.heldout_accuracy)).toFixed(2)}%)`,
  )
  model.params.dispose()
  return 0
}
