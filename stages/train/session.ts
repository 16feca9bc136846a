import { appendFileSync, existsSync, readFileSync, readdirSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { KtpError } from '../../schemas/errors.js'
import { fingerprint } from '../../schemas/fingerprint.js'
import { readMeta } from '../../schemas/metadata.js'
import { openArrow } from '../../pipeline/io/arrow-source.js'
import { ensureDir } from '../../pipeline/io/fs-errors.js'
import { shardOf } from '../../pipeline/io/shard.js'
import { stoppable, stoppedBy } from '../../pipeline/io/signals.js'
import { expectFields, parseTable } from '../formats/kaldi-tables.js'
import {
  type BackendName,
  type Model,
  type ModelConfig,
  type ModelSpecOf,
  ModelTooLarge,
  buildModel,
  modelType,
  selectBackend,
} from '../nn/index.js'
import { peekCheckpoint } from './checkpoint.js'
import { type LabelSet, describeCorpus, loadLabels } from './corpus.js'
import { type OrderPlan, orderNote, planOrder } from './corpus-memory.js'
import { DEFAULT_NEWBOB, type NewbobConfig } from './newbob.js'
import type { OptimizerConfig } from './optimizer.js'
import { NON_VALUE_OPTIONS, type TrainOptions, type schedulerOptions } from './options.js'
import { type ModelMeta, readModelMeta, saveModel } from './model-store.js'
import { type SkippedUtt, checkLabelRange, noUsableUtts, surveyFeatures, usableUtts } from './survey.js'
import { type SpeechSourceConfig, type TargetMix, speechSource } from './speech-source.js'
import { type EpochRecord, type TrainResult, TrainingInterrupted, train } from './trainer.js'

/**
 * The speech side of training, shared by ktp train, train-teacher and train-student: which files,
 * which utterances and frames, which targets, how a model's input is laid out (spliced frames or
 * chunks, as its registry entry says) — it hands the trainer tensors; the trainer itself
 * (trainer.ts) knows nothing about speech. The training methods are in method.ts, the options in
 * options.ts.
 */
export interface TrainingData {
  dim: number
  numClasses: number
  inventory: string[] | null
  trainLabels: LabelSet
  heldLabels: LabelSet
  featureFingerprint: string | null
  trainSelect: (utt: string) => boolean
  heldSelect: (utt: string) => boolean
  heldFeats: string
  inputFingerprints: Record<string, string>
  /** Class priors of the usable training labels (set by vetTrainingData). */
  priors: number[]
  /** Utterances left out of training or held-out evaluation, and why (set by vetTrainingData). */
  skipped: SkippedUtt[]
  /** Utterances used, training and held-out (set by vetTrainingData). */
  used: number
  /** Frames of the usable training utterances (set by vetTrainingData): does the corpus fit in memory? */
  trainFrames: number
  /** Frames of each usable training utterance (set by vetTrainingData): does it fit one shuffle buffer? */
  trainUttFrames: number[]
}

/** A stable number in [0, 1) per utterance id: nested subsets and held-out splits without lists. */
export function uttUnit(utt: string): number {
  return (shardOf(utt, 1_000_003) - 1) / 1_000_003
}

async function fileFingerprint(path: string): Promise<string> {
  const a = await openArrow(path, [])
  await a.close()
  return readMeta(a.schema).fingerprint ?? 'unknown'
}

/**
 * A speaker-balanced, nested subset: each speaker keeps the `fraction` of its utterances (at least
 * one) that rank first by id hash. Ranks do not change with the fraction, so a smaller subset is
 * always inside a larger one, and no speaker is over- or under-represented by chance.
 */
export function balancedSubset(utts: string[], utt2spkPath: string, fraction: number): (utt: string) => boolean {
  if (!existsSync(utt2spkPath)) throw new KtpError('no-file', `--utt2spk ${utt2spkPath}: no such file`)
  const spkOf = new Map<string, string>()
  for (const l of parseTable(readFileSync(utt2spkPath, 'utf8'), utt2spkPath))
    spkOf.set(l.key, expectFields(l, 1, utt2spkPath, 'utt speaker')[0])
  const bySpeaker = new Map<string, string[]>()
  for (const u of utts) {
    const spk = spkOf.get(u)
    if (spk === undefined)
      throw new KtpError(
        'no-speaker',
        `${utt2spkPath}: training utterance '${u}' has no speaker (is it the utt2spk of the training data?)`,
      )
    if (!bySpeaker.has(spk)) bySpeaker.set(spk, [])
    bySpeaker.get(spk)!.push(u)
  }
  const keep = new Set<string>()
  for (const list of bySpeaker.values()) {
    const ranked = list
      .map((u) => [uttUnit(`${u}#data`), u] as const)
      .sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : 1))
    const n = Math.max(1, Math.round(fraction * list.length))
    for (const [, u] of ranked.slice(0, n)) keep.add(u)
  }
  return (u: string) => keep.has(u)
}

export async function openTrainingData(o: TrainOptions, soft?: string): Promise<TrainingData> {
  const desc = await describeCorpus({ feats: o.feats, soft })
  const trainLabels = await loadLabels(o.labels)
  const separate = o.heldoutFeats !== undefined
  if (separate !== (o.heldoutLabels !== undefined))
    throw new KtpError('usage', 'give both --heldout-feats and --heldout-labels, or neither')
  const heldLabels = separate ? await loadLabels(o.heldoutLabels!) : trainLabels
  const numClasses = Math.max(trainLabels.numClasses, heldLabels.numClasses, desc.soft?.numClasses ?? 0)
  if (desc.soft && desc.soft.numClasses !== trainLabels.numClasses) {
    throw new KtpError(
      'class-mismatch',
      `${soft}: ${desc.soft.numClasses} classes, but ${o.labels} has ${trainLabels.numClasses}`,
    )
  }
  const isHeld = (u: string) => !separate && uttUnit(u) < o.heldoutFraction
  // data fraction: a unit in [0,1) independent of the held-out split (rescaled), so subsets nest
  const inFraction =
    o.dataFraction >= 1
      ? () => true
      : o.utt2spk
        ? balancedSubset(
            [...trainLabels.map.keys()].filter((u) => !isHeld(u)),
            o.utt2spk,
            o.dataFraction,
          )
        : (u: string) => uttUnit(`${u}#data`) < o.dataFraction
  const trainSelect = (u: string) => !isHeld(u) && inFraction(u)
  const heldSelect = separate ? () => true : isHeld
  const inputFingerprints: Record<string, string> = {
    feats: desc.featureFingerprint ?? 'unknown',
    labels: await fileFingerprint(o.labels),
  }
  if (separate) {
    inputFingerprints.heldoutFeats = await fileFingerprint(o.heldoutFeats!)
    inputFingerprints.heldoutLabels = await fileFingerprint(o.heldoutLabels!)
  }
  if (soft) inputFingerprints.soft = await fileFingerprint(soft)
  return {
    dim: desc.dim,
    numClasses,
    inventory: trainLabels.inventory,
    trainLabels,
    heldLabels,
    featureFingerprint: desc.featureFingerprint,
    trainSelect,
    heldSelect,
    heldFeats: separate ? o.heldoutFeats! : o.feats,
    inputFingerprints,
    priors: [],
    skipped: [],
    used: 0,
    trainFrames: 0,
    trainUttFrames: [],
  }
}

/**
 * Check the data before epoch 1 (survey.ts), once the run is known not to be up to date: labels in
 * the class range and held-out features of the training dim (else refuse), and each split left
 * with only the utterances training can use — finite features, as many labels as frames (the
 * others are named in `skipped`, reported, and counted as failed) — and not empty (else refuse).
 * Sets the class priors from the usable training labels.
 */
export async function vetTrainingData(data: TrainingData, o: TrainOptions): Promise<void> {
  const separate = o.heldoutFeats !== undefined
  const heldLabelsPath = o.heldoutLabels ?? o.labels
  checkLabelRange(data.trainLabels, data.numClasses, o.labels)
  if (separate) checkLabelRange(data.heldLabels, data.numClasses, heldLabelsPath)
  const trainSurvey = await surveyFeatures(o.feats)
  const heldSurvey = separate ? await surveyFeatures(data.heldFeats) : trainSurvey
  if (heldSurvey.dim !== trainSurvey.dim)
    throw new KtpError(
      'dim-mismatch',
      `--heldout-feats ${data.heldFeats}: features of dim ${heldSurvey.dim}, but --feats ${o.feats} has dim ${trainSurvey.dim}; ` +
        'held-out features must come from the same front end (features, cmvn) as the training features',
    )
  const train = usableUtts(trainSurvey, data.trainLabels, o.labels, data.trainSelect)
  if (train.usable.size === 0) {
    const paired = [...trainSurvey.frames.keys()].filter((u) => data.trainLabels.map.has(u)).length
    if (paired > 0 && train.common === 0)
      throw new KtpError(
        'no-data',
        `no training utterance left: ${paired} utterances have features and labels, but --heldout-fraction ${o.heldoutFraction} and --data-fraction ${o.dataFraction} leave none of them for training`,
      )
    throw noUsableUtts('training', trainSurvey, data.trainLabels, o.labels, train)
  }
  const held = usableUtts(heldSurvey, data.heldLabels, heldLabelsPath, data.heldSelect)
  // --fixed-lr with --heldout-fraction 0: training on everything for a fixed schedule, knowingly
  const noHeldWanted = !separate && o.heldoutFraction === 0 && o.fixedLr
  if (held.usable.size === 0 && !noHeldWanted) {
    if (!separate && held.common === 0)
      throw new KtpError(
        'no-data',
        `--heldout-fraction ${o.heldoutFraction} holds out none of the ${train.common} training utterances, and newbob needs held-out data: raise it, give --heldout-feats and --heldout-labels, or train a fixed schedule (--fixed-lr)`,
      )
    throw noUsableUtts('held-out', heldSurvey, data.heldLabels, heldLabelsPath, held)
  }
  data.trainSelect = (u) => train.usable.has(u)
  data.heldSelect = (u) => held.usable.has(u)
  data.skipped = [...train.skipped, ...held.skipped]
  data.used = train.usable.size + held.usable.size
  data.trainUttFrames = [...train.usable].map((u) => trainSurvey.frames.get(u)!)
  data.trainFrames = data.trainUttFrames.reduce((a, b) => a + b, 0)
  const counts = new Float64Array(data.numClasses).fill(1) // add-one: no class gets prior 0
  for (const u of train.usable) for (const l of data.trainLabels.map.get(u)!) counts[l]++
  const total = counts.reduce((a, b) => a + b, 0)
  data.priors = Array.from(counts, (c) => c / total)
}

/** Name the utterances training leaves out (the first few, then a count). */
export function reportSkipped(stage: string, data: TrainingData, log: (l: string) => void): void {
  for (const s of data.skipped.slice(0, 10)) log(`ktp ${stage}: WARNING skipping '${s.utt}': ${s.why}`)
  if (data.skipped.length > 10) log(`ktp ${stage}: WARNING … and ${data.skipped.length - 10} more utterances skipped`)
}

/** The accounting at the end of a training run: "done N, failed M", and its exit code (1 if any failed). */
export function accounting(data: TrainingData): { line: string; code: 0 | 1 } {
  return { line: `done ${data.used}, failed ${data.skipped.length}`, code: data.skipped.length > 0 ? 1 : 0 }
}

export interface Phase {
  name: string
  targets: TargetMix
  schedule: NewbobConfig
}

export function scheduleFrom(o: Pick<TrainOptions, keyof typeof schedulerOptions>): NewbobConfig {
  return {
    ...DEFAULT_NEWBOB,
    initialLr: o.lr,
    minEpochs: o.minEpochs,
    maxEpochs: o.maxEpochs,
    startHalvingImpr: o.startHalvingImpr,
    endHalvingImpr: o.endHalvingImpr,
    fixed: o.fixedLr,
  }
}

export function optimizerFrom(o: TrainOptions): Partial<OptimizerConfig> {
  return { name: o.optimizer, momentum: o.momentum, l2: o.l2 }
}

export interface TrainContext {
  out: string
  opts: TrainOptions
  data: TrainingData
  soft?: string
  /** Identifies the run: checkpoint compatibility and the model's fingerprint. */
  fingerprint: string
  resume: boolean
  log: (line: string) => void
}

/**
 * Run `run` with SIGINT/SIGTERM turned into a stop at the next step boundary (the trainer writes
 * its checkpoint there), then an 'interrupted' (exit 130) or 'terminated' (exit 143) error saying
 * how to continue. A second signal stops the process at once (the checkpoint on disk is then the
 * last whole one). The signal handling is the commands' own (pipeline/io/signals.ts).
 */
export async function trainStoppable<T>(
  ctx: Pick<TrainContext, 'out' | 'log'>,
  run: (stop: () => boolean) => Promise<T>,
): Promise<T> {
  return stoppable(
    (sig) => ctx.log(`ktp: ${sig} received: stopping at the end of this training step (again to kill at once)`),
    async (stop) => {
      try {
        return await run(() => stop.signal !== null)
      } catch (err) {
        if (!(err instanceof TrainingInterrupted) || stop.signal === null) throw err
        throw stoppedBy(
          stop.signal,
          `${stop.signal}: training stopped at ${err.phase} epoch ${err.epoch}, batch ${err.batch}; the checkpoint in ${ctx.out} holds it and no model was written: run the same command with --resume to continue`,
        )
      }
    },
  )
}

const orderNoted = new WeakMap<TrainContext, boolean>()

/**
 * Whether the whole training corpus fills less than one shuffle buffer (frames, or chunks of
 * `chunkLength` over frames + delay, as chunk-batches.ts cuts them): then the buffer is flushed
 * once per epoch, at the end, and its shuffle already mixes every frame (chunk) of every speaker.
 */
export function fitsOneBuffer(uttFrames: number[], layout: SpeechSourceConfig['layout']): boolean {
  if (layout.kind === 'frames') return uttFrames.reduce((a, b) => a + b, 0) < layout.bufferFrames
  const { chunkLength: L, delay } = layout
  return uttFrames.reduce((a, f) => a + Math.ceil((f + delay) / L), 0) < layout.bufferChunks
}

/**
 * Whether the training corpus (its features, `soft` targets and, with `labels`, its labels) is
 * held in memory to shuffle the utterance order every epoch (corpus-memory.ts). The run's log says
 * which order once, and again only if a later part of the run (RBM pre-training reads features
 * only; fine-tuning adds labels) plans the other one.
 */
export async function planUtteranceOrder(
  ctx: TrainContext,
  parts: { soft?: string; labels: boolean; layout: SpeechSourceConfig['layout'] },
): Promise<OrderPlan> {
  const plan = await planOrder({
    feats: ctx.opts.feats,
    soft: parts.soft,
    labels: parts.labels,
    frames: ctx.data.trainFrames,
    budgetMB: ctx.opts.shuffleMemory,
    oneBuffer: fitsOneBuffer(ctx.data.trainUttFrames, parts.layout),
  })
  if (orderNoted.get(ctx) !== plan.inMemory) {
    orderNoted.set(ctx, plan.inMemory)
    ctx.log(orderNote(plan, 'train')) // named as the other lines of runPhases
  }
  return plan
}

/** Train `model` through the phases, each with its own schedule, checkpointed for --resume. */
export async function runPhases(
  model: Model,
  phases: Phase[],
  ctx: TrainContext,
): Promise<{ records: EpochRecord[]; results: TrainResult[] }> {
  const { opts, data } = ctx
  ensureDir(ctx.out) // (Node's recursive mkdir spins forever under /proc)
  const logPath = join(ctx.out, 'train.jsonl')
  const records: EpochRecord[] = []
  const results: TrainResult[] = []
  const frame = model.input === 'frames'
  const layout: SpeechSourceConfig['layout'] = frame
    ? {
        kind: 'frames',
        batchSize: opts.batchSize,
        bufferFrames: opts.bufferFrames,
        left: opts.context,
        right: opts.context,
      }
    : {
        kind: 'chunks',
        chunksPerBatch: opts.chunksPerBatch,
        chunkLength: opts.chunkLength,
        bufferChunks: opts.bufferChunks,
        delay: opts.delay,
      }
  let skipped = 0
  const order = await planUtteranceOrder(ctx, { soft: ctx.soft, labels: true, layout })
  for (const phase of phases) {
    const source = speechSource({
      inMemory: order.inMemory,
      feats: opts.feats,
      labels: data.trainLabels,
      soft: ctx.soft,
      numClasses: data.numClasses,
      select: data.trainSelect,
      layout,
      targets: phase.targets,
      seed: opts.seed,
      onSkip: (u, why) => {
        if (skipped++ < 10) ctx.log(`ktp train: WARNING skipping '${u}': ${why}`)
      },
    })
    const held = speechSource({
      feats: data.heldFeats,
      labels: data.heldLabels,
      numClasses: data.numClasses,
      select: data.heldSelect,
      layout: frame ? ({ ...layout, bufferFrames: 1 } as SpeechSourceConfig['layout']) : layout,
      targets: { hard: 1, soft: 0, temperature: 1 },
      seed: opts.seed,
    })
    const r = await trainStoppable(ctx, (stop) =>
      train(
        model,
        source,
        held,
        {
          stop,
          optimizer: optimizerFrom(opts),
          schedule: phase.schedule,
          clip: opts.clip,
          maxBadBatches: 20,
          logEvery: 50,
          phase: phase.name,
          resume: ctx.resume,
          workers: opts.workers,
          checkpoint: {
            path: join(ctx.out, `checkpoint.${phase.name}.bin`),
            everyMinutes: opts.checkpointMinutes,
            fingerprint: ctx.fingerprint,
          },
        },
        (rec) => {
          appendFileSync(logPath, `${JSON.stringify(rec)}\n`)
          if ('heldout_accuracy' in rec) {
            ctx.log(
              `ktp train: ${rec.phase} epoch ${rec.epoch} lr ${rec.lr.toPrecision(3)} train loss ${rec.train_loss.toFixed(4)}` +
                `${rec.train_accuracy === null ? '' : ` acc ${rec.train_accuracy.toFixed(2)}%`} held-out acc ${rec.heldout_accuracy.toFixed(2)}%` +
                `${rec.accepted ? '' : ' (rejected)'} ${rec.rows_per_s} frames/s${rec.bad_batches ? `, ${rec.bad_batches} bad batches skipped` : ''}`,
            )
          }
        },
      ),
    )
    records.push(...r.epochs)
    results.push(r)
  }
  return { records, results }
}

/** The fingerprint and build key of a training run from its options and inputs. */
export function trainingKeys(
  stage: string,
  opts: Record<string, unknown>,
  inputs: Record<string, string>,
): { fingerprint: string; build: string } {
  const valueOpts = { ...opts }
  for (const k of NON_VALUE_OPTIONS) delete valueOpts[k]
  const fp = fingerprint(
    stage,
    valueOpts,
    Object.entries(inputs)
      .sort()
      .map(([k, v]) => `${k}=${v}`),
  )
  return { fingerprint: fp, build: fp }
}

/**
 * Before a run writes into `out`: what do the checkpoints there belong to? One of an interrupted
 * run with these very options is continued with --resume, and without it the run refuses, saying
 * how to continue or start afresh (never silently restarting at epoch 1 over it). One of a run
 * with other options is refused too, unless it is the leftover of the finished (now stale) model
 * there. A damaged one (not the size its header describes) is never resumed. --force discards
 * whatever is not resumed.
 */
export function checkEarlierRun(
  stage: string,
  out: string,
  fingerprint: string,
  cli: { resume: boolean; force: boolean },
  log: (l: string) => void,
): void {
  if (!existsSync(out)) return
  const files = readdirSync(out).filter((f) => /^(checkpoint\..+|rbm\.\d+)\.bin$/.test(f))
  const finished = existsSync(join(out, 'ktp.json'))
  const how = 'pass --force to discard it and start afresh, or choose another -o'
  for (const f of files) {
    const path = join(out, f)
    const ck = peekCheckpoint<{ fingerprint?: string; phase?: string; epoch?: number; skip?: number }>(path)
    const discard = (why: string) => {
      log(`ktp ${stage}: discarding ${path} (${why})`)
      unlinkSync(path)
    }
    if (!ck.header || !ck.whole) {
      if (cli.force) discard('damaged')
      else
        throw new KtpError(
          'bad-checkpoint',
          `${path}: a damaged checkpoint (${ck.bytes} bytes${Number.isFinite(ck.expected) ? `, its header describes ${ck.expected}` : ', no readable header'}), which cannot be resumed: ${how}`,
        )
    } else if (ck.header.fingerprint === fingerprint) {
      if (cli.resume || f.startsWith('rbm.')) continue // resumed (finished RBM layers are always reused)
      if (cli.force) discard('--force')
      else {
        const at = ck.header.phase
          ? ` (${ck.header.phase}, epoch ${(ck.header.epoch ?? 0) + 1}, batch ${ck.header.skip ?? 0})`
          : ''
        throw new KtpError(
          'earlier-run',
          `${out} holds a checkpoint from an earlier, unfinished run with these options${at}: pass --resume to continue it, or --force to discard it and start afresh, or choose another -o`,
        )
      }
    } else if (finished || cli.force) discard(finished ? 'left by the earlier, finished model' : '--force')
    else
      throw new KtpError(
        'earlier-run',
        `${out} holds a checkpoint (${f}) from an unfinished run with other options or data: rerun that command with --resume to finish it, or ${how}`,
      )
  }
}

export function upToDate(out: string, build: string): ModelMeta | null {
  const meta = readModelMeta(out)
  return meta && meta.build === build ? meta : null
}

export function finishModel(
  ctx: TrainContext,
  model: Model,
  keys: { fingerprint: string; build: string },
  training: Record<string, unknown>,
  splice: { left: number; right: number },
): void {
  saveModel(ctx.out, model, {
    splice,
    // infer must undo the target delay, so the model says what it was trained with
    ...(model.input === 'chunks' && ctx.opts.delay > 0 ? { delay: ctx.opts.delay } : {}),
    featureDim: ctx.data.dim,
    featureFingerprint: ctx.data.featureFingerprint,
    numClasses: ctx.data.numClasses,
    inventory: ctx.data.inventory,
    priors: ctx.data.priors,
    fingerprint: keys.fingerprint,
    build: keys.build,
    training,
  })
}

export async function useBackend(name: BackendName, log: (l: string) => void): Promise<string> {
  const chosen = await selectBackend(name)
  log(`ktp: tfjs backend ${chosen}`)
  return chosen
}

/** Build `config` (validated by the registry) for this data: its entry gives input width and layout. */
export function buildFor(config: ModelConfig | ModelSpecOf['model'], data: TrainingData, opts: TrainOptions): Model {
  const inputDim = modelType(config.type).inputDim(data.dim, opts.context)
  try {
    return buildModel({ model: config, inputDim, numClasses: data.numClasses, seed: opts.seed })
  } catch (err) {
    // a typed array or wasm heap the size asked for cannot be had: the config, not ktp, is at fault
    if (err instanceof ModelTooLarge || err instanceof RangeError || /out of memory/i.test(String(err)))
      throw new KtpError(
        'model-too-large',
        `--model ${JSON.stringify(config)}: too large for ${inputDim} inputs and ${data.numClasses} classes: ${(err as Error).message}; choose smaller layers`,
      )
    throw err
  }
}

/** The input splicing a model directory records: ±context for frame models, none for chunk models. */
export function spliceOf(model: Model, opts: TrainOptions): { left: number; right: number } {
  return model.input === 'frames' ? { left: opts.context, right: opts.context } : { left: 0, right: 0 }
}
