import * as tf from '@tensorflow/tfjs'
import { KtpError } from '../../schemas/errors.js'
import { letSignalsIn } from '../../pipeline/io/signals.js'
import type { Model } from '../nn/index.js'
import { type TrainBatch, batchLoss, correctCount, disposeBatch } from './loss.js'
import { type NewbobConfig, newbobStart, newbobUpdate } from './newbob.js'
import { Optimizer, type OptimizerConfig } from './optimizer.js'
import { makeStep } from './step.js'
import {
  type CheckpointKey,
  type EpochRecord,
  type Tally,
  type TrainerState,
  emptyTally,
  restoreState,
  saveState,
} from './trainer-state.js'
import { GradientWorkers } from './workers.js'

export type { EpochRecord } from './trainer-state.js'

/**
 * The trainer: mini-batch gradient descent with newbob scheduling, clipping, a NaN/Inf guard,
 * held-out evaluation and exact resumption. It knows models, batches of tensors and losses —
 * nothing about speech, files or frames beyond "rows with targets". The loss and its gradient are
 * in loss.ts, one step in step.ts, the checkpointed state in trainer-state.ts; this file is the
 * epoch loop.
 */
export interface DataSource {
  /** Batches of epoch `e` (0-based), the first `skip` of them not yielded (resumption). Deterministic. */
  epoch(e: number, skip: number): AsyncIterable<TrainBatch>
}

export interface TrainerConfig {
  optimizer: Partial<OptimizerConfig>
  schedule: NewbobConfig
  /** Global gradient-norm clip; ≤ 0 = off (the finite guard stays). */
  clip: number
  /** Stop after this many non-finite batches in a row. */
  maxBadBatches: number
  /** Read statistics back every this many batches (the only sync points in the loop). */
  logEvery: number
  checkpoint?: { path: string; everyMinutes: number; fingerprint: string }
  resume?: boolean
  /** Phase name in logs ('pretrain', 'finetune', …). */
  phase: string
  /**
   * Threads computing each batch's gradient (data parallel, workers.ts): 1 (default) = this
   * thread only; N > 1 = this thread plus N − 1 worker threads, each on a contiguous part.
   */
  workers?: number
  /**
   * Asked between steps: true stops the run at this step boundary — the unfinished epoch's
   * statistics read back, the checkpoint written — and `train` throws TrainingInterrupted.
   */
  stop?: () => boolean
}

/** Thrown when `stop` asked the run to end; the checkpoint (if configured) holds where it stopped. */
export class TrainingInterrupted extends Error {
  constructor(
    readonly phase: string,
    readonly epoch: number,
    readonly batch: number,
    readonly checkpointed: boolean,
  ) {
    super(`${phase}: stopped at epoch ${epoch}, batch ${batch}`)
    this.name = 'TrainingInterrupted'
  }
}

export interface TrainResult {
  epochs: EpochRecord[]
  bestHeldoutAccuracy: number
}

export type ProgressRecord = { phase: string; epoch: number; batch: number; loss: number; rows_per_s: number }

/** Frame accuracy (percent) and mean loss of `model` over a data source (epoch 0, no updates). */
export async function evaluate(
  model: Model,
  data: DataSource,
): Promise<{ loss: number; accuracy: number; rows: number }> {
  let lossSum = 0
  let rows = 0
  let correct = 0
  let counted = 0
  for await (const b of data.epoch(0, 0)) {
    const [l, c, n] = tf.tidy(() => {
      const logits = model.apply(b.x)
      const cc = correctCount(logits, b)
      const w = b.mask ? tf.sum(b.mask) : tf.scalar(b.rows)
      return [tf.mul(batchLoss(logits, b), w), cc?.correct ?? tf.scalar(0), cc?.counted ?? tf.scalar(0)]
    })
    const vals = await tf.stack([l, c, n]).data()
    tf.dispose([l, c, n])
    lossSum += vals[0]
    correct += vals[1]
    counted += vals[2]
    rows += b.mask ? vals[2] || b.rows : b.rows
    disposeBatch(b)
  }
  return { loss: rows ? lossSum / rows : NaN, accuracy: counted ? (100 * correct) / counted : NaN, rows }
}

/**
 * Adds the read-back statistics of finished steps to `tally` (4 values a step: loss · weight, gate,
 * correct, counted) and stops the run after `maxBad` non-finite steps in a row.
 */
function tallySteps(v: ArrayLike<number>, tally: Tally, bad: { run: number }, maxBad: number, where: string): void {
  for (let i = 0; i < v.length; i += 4) {
    if (v[i + 1] > 0) {
      tally.loss += v[i]
      bad.run = 0
    } else {
      tally.bad++
      bad.run++
      if (bad.run >= maxBad) {
        throw new KtpError(
          'diverged',
          `${where}: ${bad.run} batches in a row had a non-finite loss or gradient; lower the learning rate or enable --clip`,
        )
      }
    }
    tally.correct += v[i + 2]
    tally.counted += v[i + 3]
  }
}

export async function train(
  model: Model,
  trainData: DataSource,
  heldout: DataSource,
  cfg: TrainerConfig,
  log: (r: EpochRecord | ProgressRecord) => void = () => {},
): Promise<TrainResult> {
  const opt = new Optimizer(model.params, cfg.optimizer)
  const key: CheckpointKey | null = cfg.checkpoint
    ? { path: cfg.checkpoint.path, fingerprint: cfg.checkpoint.fingerprint, phase: cfg.phase }
    : null
  const st: TrainerState = (key && cfg.resume ? restoreState(key, model, opt) : null) ?? {
    epoch: 0,
    skip: 0,
    schedule: newbobStart(cfg.schedule),
    records: [],
    partial: emptyTally(),
    best: model.params.toFlat(),
  }
  const save = () => key && saveState(key, model, opt, st)
  let lastSave = Date.now()

  const pool = (cfg.workers ?? 1) > 1 && !st.schedule.done ? await GradientWorkers.start(model, cfg.workers!) : null
  const step = makeStep(model, opt, cfg.clip, pool)
  try {
    while (!st.schedule.done) {
      const t0 = Date.now()
      const pending: tf.Tensor[] = []
      const bad = { run: 0 }
      const flush = async () => {
        if (pending.length === 0) return
        const v = await tf.stack(pending).data()
        tf.dispose(pending)
        pending.length = 0
        tallySteps(v, st.partial, bad, cfg.maxBadBatches, `${cfg.phase} (epoch ${st.epoch + 1})`)
      }
      const interrupt = async () => {
        await flush()
        save()
        throw new TrainingInterrupted(cfg.phase, st.epoch + 1, st.skip, key !== null)
      }
      if (cfg.stop?.()) await interrupt()
      for await (const b of trainData.epoch(st.epoch, st.skip)) {
        pending.push(await step(b, st.schedule.lr))
        st.partial.rows += b.rows
        disposeBatch(b)
        st.skip++
        if (cfg.stop) {
          // a step is all microtasks: let the event loop deliver a pending signal before asking
          await letSignalsIn()
          if (cfg.stop()) await interrupt()
        }
        if (pending.length >= cfg.logEvery) {
          await flush()
          const s = (Date.now() - t0) / 1000
          log({
            phase: cfg.phase,
            epoch: st.epoch + 1,
            batch: st.skip,
            loss: st.partial.loss / Math.max(1, st.partial.rows),
            rows_per_s: Math.round(st.partial.rows / Math.max(s, 1e-3)),
          })
          if (cfg.checkpoint && Date.now() - lastSave > cfg.checkpoint.everyMinutes * 60_000) {
            save()
            lastSave = Date.now()
          }
        }
      }
      await flush()
      const rec = await endEpoch(model, heldout, cfg, st, (Date.now() - t0) / 1000)
      log(rec)
      st.epoch++
      st.skip = 0
      save()
      lastSave = Date.now()
    }
  } finally {
    await pool?.terminate()
  }
  model.params.loadFlat(st.best)
  opt.dispose()
  const bestAcc = Math.max(...st.records.filter((r) => r.accepted).map((r) => r.heldout_accuracy), -Infinity)
  return { epochs: st.records, bestHeldoutAccuracy: bestAcc }
}

/** Held-out evaluation and newbob's verdict on the finished epoch: keep it, or undo it. */
async function endEpoch(
  model: Model,
  heldout: DataSource,
  cfg: TrainerConfig,
  st: TrainerState,
  seconds: number,
): Promise<EpochRecord> {
  const ev = await evaluate(model, heldout)
  const next = newbobUpdate(cfg.schedule, st.schedule, ev.accuracy)
  if (next.accepted) st.best = model.params.toFlat()
  else model.params.loadFlat(st.best)
  const p = st.partial
  const rec: EpochRecord = {
    phase: cfg.phase,
    epoch: st.epoch + 1,
    lr: st.schedule.lr,
    train_loss: p.loss / Math.max(1, p.rows),
    train_accuracy: p.counted ? (100 * p.correct) / p.counted : null,
    heldout_loss: ev.loss,
    heldout_accuracy: ev.accuracy,
    accepted: next.accepted,
    rows_per_s: Math.round(p.rows / Math.max(seconds, 1e-3)),
    bad_batches: p.bad,
    seconds,
  }
  st.records.push(rec)
  st.schedule = next
  st.partial = emptyTally()
  return rec
}
