import * as tf from '@tensorflow/tfjs'
import { existsSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import { KtpError } from '../../schemas/errors.js'
import {
  type DnnConfig,
  type Model,
  type Rbm,
  cd1,
  copyMatchingParams,
  createRbm,
  disposeRbm,
  dnnLayerName,
  rbmHidden,
  rbmMomentum,
} from '../nn/index.js'
import { epochUtterances } from '../train/corpus-memory.js'
import { loadCheckpoint, saveCheckpoint } from '../train/checkpoint.js'
import { frameBatches } from '../train/frame-batches.js'
import { epochRandom } from '../train/shuffle.js'
import { TrainingInterrupted } from '../train/trainer.js'
import { letSignalsIn } from '../../pipeline/io/signals.js'
import {
  CHUNK_ONLY,
  type TrainCliOptions,
  nonDefault,
  optionList,
  parseModelConfig,
  trainOptions,
} from '../train/options.js'
import {
  type TrainContext,
  accounting,
  buildFor,
  checkEarlierRun,
  finishModel,
  openTrainingData,
  planUtteranceOrder,
  reportSkipped,
  runPhases,
  scheduleFrom,
  trainStoppable,
  trainingKeys,
  upToDate,
  useBackend,
  vetTrainingData,
} from '../train/session.js'

/**
 * `ktp train-teacher`: a DNN teacher on spliced frames, optionally pre-trained layer by layer —
 * generatively with stacked RBMs (Kaldi `pretrain_dbn.sh`: a Gaussian–Bernoulli RBM on the input,
 * Bernoulli–Bernoulli above, CD-1 with momentum and L2, then a fresh softmax layer and
 * cross-entropy fine-tuning), or discriminatively (one hidden layer + softmax for an epoch, add a
 * layer, repeat) — then fine-tuned with newbob.
 */
export const teacherOptions = trainOptions.extend({
  pretrain: z
    .enum(['none', 'rbm', 'discriminative'])
    .default('none')
    .describe('layer-wise pre-training before fine-tuning'),
  rbmEpochs: z
    .number()
    .int()
    .min(1)
    .default(1)
    .describe('RBM epochs per Bernoulli layer (the Gaussian layer gets twice as many)'),
  rbmLr: z.number().positive().default(0.4).describe('RBM learning rate, Bernoulli layers (Kaldi: 0.4)'),
  rbmLrLow: z.number().positive().default(0.01).describe('RBM learning rate, the Gaussian input layer (Kaldi: 0.01)'),
  rbmL2: z.number().min(0).default(0.0002).describe('RBM L2 penalty (Kaldi: 0.0002)'),
  rbmBatchSize: z.number().int().positive().default(100).describe('RBM mini-batch, frames (Kaldi: 100)'),
  discriminativeLr: z
    .number()
    .positive()
    .default(0.008)
    .describe('discriminative pre-training: learning rate of each one-epoch stage'),
})
export type TeacherOptions = z.infer<typeof teacherOptions>

interface RbmLog {
  layer: number
  epoch: number
  reconstruction_error: number
  frames: number
}

/** Where an RBM layer stopped by a signal is: enough to continue it to the same weights. */
interface RbmPosition {
  fingerprint: string
  /** For checkEarlierRun's messages: `rbm layer L`, the epoch (0-based) and the batches done in it. */
  phase: string
  epoch: number
  skip: number
  seen: number
  rampFrames: number
  step: number
  errSum: number
  frames: number
}

/**
 * Train the RBM stack; returns DNN hidden-layer parameters {h0.W, h0.b, …} and the per-epoch
 * errors. A finished layer is kept as `rbm.L.bin`. A SIGINT/SIGTERM stops the layer under way at
 * a batch boundary and keeps it, its momentum and its place in the data as
 * `checkpoint.rbm.L.bin`, which `--resume` continues to the weights an uninterrupted run gives.
 */
export async function pretrainRbm(
  o: TeacherOptions,
  ctx: TrainContext,
  hidden: number[],
  log: (r: RbmLog) => void,
  stop: () => boolean = () => false,
): Promise<Record<string, Float32Array>> {
  const inDim = ctx.data.dim * (2 * o.context + 1)
  const sizes = [inDim, ...hidden]
  const stack: Rbm[] = []
  const params: Record<string, Float32Array> = {}
  let step = 0
  // the features only, read once when they fit --shuffle-memory, for every layer and epoch
  const layout = {
    kind: 'frames',
    batchSize: o.batchSize,
    bufferFrames: o.bufferFrames,
    left: o.context,
    right: o.context,
  } as const
  const order = await planUtteranceOrder(ctx, { labels: false, layout })
  const utterances = epochUtterances({ feats: o.feats, select: ctx.data.trainSelect }, order.inMemory)
  for (let l = 0; l < hidden.length; l++) {
    const name = dnnLayerName(l, hidden.length + 1)
    const ckPath = join(ctx.out, `rbm.${l}.bin`)
    const partPath = join(ctx.out, `checkpoint.rbm.${l}.bin`)
    const rbm = createRbm(l === 0 ? 'gaussian' : 'bernoulli', sizes[l], sizes[l + 1], o.seed, name)
    const shape = (n: string): number[] =>
      n.endsWith('W') ? [sizes[l], sizes[l + 1]] : n.startsWith('dv') || n === 'vb' ? [sizes[l]] : [sizes[l + 1]]
    const restore = (arrays: Record<string, Float32Array>) => {
      for (const n of Object.keys(arrays) as (keyof Rbm)[])
        (rbm[n] as tf.Variable).assign(tf.tensor(arrays[n], shape(n)))
    }
    const done = loadCheckpoint<{ fingerprint: string; step?: number }>(ckPath)
    if (done && done.header.fingerprint === ctx.fingerprint) {
      restore({ W: done.arrays.W, hb: done.arrays.hb, vb: done.arrays.vb })
      // the next layer's sampling seeds continue where this layer's ended
      step = done.header.step ?? step
      ctx.log(`ktp train-teacher: RBM layer ${l + 1} restored from ${ckPath}`)
    } else {
      const epochs = l === 0 ? 2 * o.rbmEpochs : o.rbmEpochs
      const lr = l === 0 ? o.rbmLrLow : o.rbmLr
      const at: RbmPosition = {
        fingerprint: ctx.fingerprint,
        phase: `rbm layer ${l + 1}`,
        epoch: 0,
        skip: 0,
        seen: 0,
        rampFrames: 0,
        step,
        errSum: 0,
        frames: 0,
      }
      const part = ctx.resume ? loadCheckpoint<RbmPosition>(partPath) : null
      if (part && part.header.fingerprint === ctx.fingerprint) {
        restore(part.arrays)
        Object.assign(at, part.header)
        ctx.log(`ktp train-teacher: RBM layer ${l + 1} resumed at epoch ${at.epoch + 1}, batch ${at.skip}`)
      }
      step = at.step
      for (let e = at.epoch; e < epochs; e++) {
        const errs: tf.Scalar[] = []
        const flush = async () => {
          if (errs.length === 0) return
          at.errSum += (await tf.addN(errs).data())[0]
          tf.dispose(errs)
          errs.length = 0
        }
        let batch = 0
        const rand = epochRandom(o.seed + 1000 * (l + 1), e)
        for await (const fb of frameBatches(utterances(rand, false), {
          batchSize: o.rbmBatchSize,
          bufferFrames: o.bufferFrames,
          left: o.context,
          right: o.context,
          rand,
          hard: false,
          soft: false,
          temperature: 1,
          numClasses: 1,
        })) {
          if (batch++ < at.skip) continue // done before the run was stopped
          const err = tf.tidy(() => {
            let v = tf.tensor2d(fb.x, [fb.size, fb.inDim])
            for (const below of stack) v = rbmHidden(below, v)
            // momentum ramps over the first epoch of each layer (Kaldi ramps over a fixed frame count)
            return tf.mul(
              cd1(rbm, v, {
                lr,
                momentum: rbmMomentum(at.seen, at.rampFrames || Infinity),
                l2: o.rbmL2,
                seed: o.seed * 7919 + step++,
              }),
              fb.size,
            )
          })
          errs.push(err as tf.Scalar)
          at.seen += fb.size
          at.frames += fb.size
          at.skip++
          if (errs.length >= 50) await flush()
          // a CD-1 update is all microtasks: let a pending signal in, then stop at this boundary
          await letSignalsIn()
          if (stop()) {
            await flush()
            at.step = step
            saveCheckpoint(partPath, { header: { ...at }, arrays: rbmArrays(rbm) })
            throw new TrainingInterrupted(at.phase, e + 1, at.skip, true)
          }
        }
        await flush()
        if (e === 0) at.rampFrames = at.frames
        const rec = {
          layer: l + 1,
          epoch: e + 1,
          reconstruction_error: at.errSum / Math.max(1, at.frames),
          frames: at.frames,
        }
        log(rec)
        ctx.log(
          `ktp train-teacher: RBM layer ${l + 1} (${rbm.visible}-bernoulli ${sizes[l]}→${sizes[l + 1]}) epoch ${e + 1}: reconstruction error ${rec.reconstruction_error.toFixed(4)}`,
        )
        Object.assign(at, { epoch: e + 1, skip: 0, errSum: 0, frames: 0 })
      }
      const { W, hb, vb } = rbmArrays(rbm)
      saveCheckpoint(ckPath, { header: { fingerprint: ctx.fingerprint, step }, arrays: { W, hb, vb } })
      rmSync(partPath, { force: true })
    }
    params[`${name}.W`] = Float32Array.from(rbm.W.dataSync() as Float32Array)
    params[`${name}.b`] = Float32Array.from(rbm.hb.dataSync() as Float32Array)
    stack.push(rbm)
  }
  stack.forEach(disposeRbm)
  return params
}

/** An RBM's weights and momentum, for its checkpoints. */
function rbmArrays(rbm: Rbm): Record<string, Float32Array> {
  const a = (v: tf.Variable) => Float32Array.from(v.dataSync() as Float32Array)
  return { W: a(rbm.W), hb: a(rbm.hb), vb: a(rbm.vb), dW: a(rbm.dW), dvb: a(rbm.dvb), dhb: a(rbm.dhb) }
}

/** Discriminative layer-wise pre-training: grow 1 → H hidden layers, one CE epoch each. */
export async function pretrainDiscriminative(
  o: TeacherOptions,
  ctx: TrainContext,
  cfg: DnnConfig,
): Promise<Record<string, Float32Array>> {
  let carried: Record<string, Float32Array> = {}
  for (let n = 1; n < cfg.hidden.length; n++) {
    const partial = buildFor({ ...cfg, hidden: cfg.hidden.slice(0, n) }, ctx.data, o)
    copyMatchingParams(carried, partial, (p) => p.startsWith('out.'))
    await runPhases(
      partial,
      [
        {
          name: `disc${n}`,
          targets: { hard: 1, soft: 0, temperature: 1 },
          schedule: { ...scheduleFrom(o), initialLr: o.discriminativeLr, maxEpochs: 1, minEpochs: 1, fixed: true },
        },
      ],
      ctx,
    )
    carried = partial.params.toFlat()
    partial.params.dispose()
  }
  return carried
}

const RBM_OPTIONS = ['rbmEpochs', 'rbmLr', 'rbmLrLow', 'rbmL2', 'rbmBatchSize'] as const

/** Options set away from their defaults that this run will not read: a warning each, naming why. */
function warnIgnored(o: TeacherOptions, log: (l: string) => void): void {
  const pretrain = nonDefault(teacherOptions, o, [
    ...(o.pretrain === 'rbm' ? [] : RBM_OPTIONS),
    ...(o.pretrain === 'discriminative' ? [] : ['discriminativeLr']),
  ])
  if (pretrain.length) log(`ktp train-teacher: WARNING ${optionList(pretrain)} no effect with --pretrain ${o.pretrain}`)
  const chunk = nonDefault(teacherOptions, o, CHUNK_ONLY)
  if (chunk.length) log(`ktp train-teacher: WARNING ${optionList(chunk)} no effect on a DNN (spliced frames)`)
  if (o.optimizer !== 'momentum') {
    const m = nonDefault(teacherOptions, o, ['momentum'])
    if (m.length) log(`ktp train-teacher: WARNING ${optionList(m)} no effect with --optimizer ${o.optimizer}`)
  }
}

export async function runTrainTeacher(
  o: TeacherOptions,
  { output: out, resume, force }: TrainCliOptions,
  log: (l: string) => void,
): Promise<number> {
  const config = parseModelConfig(o.model)
  if (config.type !== 'dnn')
    throw new KtpError(
      'usage',
      `--model: train-teacher trains DNNs (type dnn), got ${config.type}; use ktp train or train-student`,
    )
  warnIgnored(o, log)
  const data = await openTrainingData(o)
  const keys = trainingKeys('train-teacher', o, data.inputFingerprints)
  if (!force && upToDate(out, keys.build)) {
    log(`ktp train-teacher: ${out} is up to date, nothing to do`)
    return 0
  }
  if (!resume && existsSync(join(out, 'ktp.json'))) log(`ktp train-teacher: ${out} is stale; retraining`)
  checkEarlierRun('train-teacher', out, keys.fingerprint, { resume, force }, log)
  await vetTrainingData(data, o)
  reportSkipped('train-teacher', data, log)
  await useBackend(o.backend, log)
  const ctx: TrainContext = { out, opts: o, data, fingerprint: keys.fingerprint, resume, log }
  const model: Model = buildFor(config, data, o)
  const rbmLog: RbmLog[] = []
  if (o.pretrain === 'rbm' && config.hidden.length > 0) {
    const init = await trainStoppable(ctx, (stop) => pretrainRbm(o, ctx, config.hidden, (r) => rbmLog.push(r), stop))
    copyMatchingParams(init, model, (p) => p.startsWith('out.'))
  } else if (o.pretrain === 'discriminative' && config.hidden.length > 1) {
    copyMatchingParams(await pretrainDiscriminative(o, ctx, config), model, (p) => p.startsWith('out.'))
  }
  const { records } = await runPhases(
    model,
    [{ name: 'finetune', targets: { hard: 1, soft: 0, temperature: 1 }, schedule: scheduleFrom(o) }],
    ctx,
  )
  finishModel(
    ctx,
    model,
    keys,
    { stage: 'train-teacher', options: o, rbm: rbmLog, epochs: records },
    { left: o.context, right: o.context },
  )
  const { line, code } = accounting(data)
  log(
    `ktp train-teacher: wrote ${out} (best held-out frame accuracy ${Math.max(...records.filter((r) => r.accepted).map((r) => r.heldout_accuracy)).toFixed(2)}%); ${line}`,
  )
  return code
}
