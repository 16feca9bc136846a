import * as tf from '@tensorflow/tfjs'
import { KtpError } from '../../schemas/errors.js'
import type { Model } from '../nn/model.js'
import type { Params } from '../nn/params.js'
import { softmaxCrossEntropy, sparseSoftmaxCrossEntropy } from '../nn/ops.js'
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js'
import { NewbobConfig, NewbobState, newbobStart, newbobUpdate } from './newbob.js'
import { Optimizer, OptimizerConfig, clipAndGuard } from './optimizer.js'
import { GradientWorkers, PartResult, partGradients } from './workers.js'

/**
 * The trainer: mini-batch gradient descent with newbob scheduling, clipping, a NaN/Inf guard,
 * held-out evaluation and exact resumption. It knows models, batches of tensors and losses —
 * nothing about speech, files or frames beyond "rows with targets".
 *
 * Loss: Σ_terms weight · T² · CE(softmax(z / T), targets), averaged over (masked) rows. With soft
 * targets p at T this is T²·KL(p ‖ softmax(z/T)) plus a constant (the targets' entropy), i.e. the
 * knowledge-transfer loss of DESIGN.md §5; with one-hot targets at T = 1 it is plain cross-entropy;
 * two terms give the α·CE + (1−α)·T²·KL regulariser. Targets come dense (a distribution per row) or
 * sparse (k classes with their probabilities and one probability shared by every other class, e.g.
 * top-k targets with their tail mass): the same loss, without a dense [rows, C] target array.
 */
export interface SparseTargets {
  /** int32 [..., k]: the listed classes of each row (distinct within a row). */
  ids: tf.Tensor
  /** [..., k]: their probabilities. */
  probs: tf.Tensor
  /** [...]: the probability of each of the C − k classes a row does not list. */
  rest: tf.Tensor
}

export type TargetTerm = {
  temperature: number
  weight: number
} & (
  | {
      /** Row-wise target distributions, shaped like the logits. */
      targets: tf.Tensor
      sparse?: undefined
    }
  | { targets?: undefined; sparse: SparseTargets }
)

/** The tensors a target term holds. */
export function termTensors(term: TargetTerm): tf.Tensor[] {
  return term.sparse ? [term.sparse.ids, term.sparse.probs, term.sparse.rest] : [term.targets]
}

/** The same term with each of its tensors replaced by f(tensor) (slices, copies, …). */
export function mapTerm(term: TargetTerm, f: (t: tf.Tensor) => tf.Tensor): TargetTerm {
  const { temperature, weight } = term
  if (term.sparse) return { temperature, weight, sparse: { ids: f(term.sparse.ids), probs: f(term.sparse.probs), rest: f(term.sparse.rest) } }
  return { temperature, weight, targets: f(term.targets) }
}

export interface TrainBatch {
  x: tf.Tensor
  terms: TargetTerm[]
  /** 0/1 per row (padding), shaped like the logits without the class axis. */
  mask?: tf.Tensor
  /** Class ids per row for accuracy (int32, shaped like mask), when known. */
  labels?: tf.Tensor
  rows: number
}

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
}

export interface EpochRecord {
  phase: string
  epoch: number
  lr: number
  train_loss: number
  train_accuracy: number | null
  heldout_loss: number
  heldout_accuracy: number
  accepted: boolean
  rows_per_s: number
  bad_batches: number
  seconds: number
}

export interface TrainResult {
  epochs: EpochRecord[]
  bestHeldoutAccuracy: number
}

export function batchLoss(logits: tf.Tensor, b: TrainBatch): tf.Scalar {
  return tf.tidy(() => {
    let total: tf.Scalar | null = null
    for (const term of b.terms) {
      const z = term.temperature === 1 ? logits : tf.div(logits, term.temperature)
      const ce = term.sparse
        ? sparseSoftmaxCrossEntropy(z, term.sparse.ids, term.sparse.probs, term.sparse.rest, b.mask)
        : softmaxCrossEntropy(z, term.targets, b.mask)
      const l = tf.mul(ce, term.weight * term.temperature * term.temperature) as tf.Scalar
      total = total ? (tf.add(total, l) as tf.Scalar) : l
    }
    if (!total) throw new KtpError('no-targets', 'a training batch has no target terms')
    return total
  })
}

/** Correct predictions and counted rows of a batch (masked), as scalars. */
export function correctCount(logits: tf.Tensor, b: TrainBatch): { correct: tf.Scalar; counted: tf.Scalar } | null {
  if (!b.labels) return null
  return tf.tidy(() => {
    const pred = tf.argMax(logits, -1)
    const hit = tf.cast(tf.equal(pred, b.labels!), 'float32')
    const m = b.mask ?? tf.onesLike(hit)
    return { correct: tf.sum(tf.mul(hit, m)) as tf.Scalar, counted: tf.sum(m) as tf.Scalar }
  })
}

/** Dispose every tensor of a batch. */
export function disposeBatch(b: TrainBatch): void {
  tf.dispose([b.x, b.mask, b.labels, ...b.terms.flatMap(termTensors)].filter((t): t is tf.Tensor => t != null))
}

/** Frame accuracy (percent) and mean loss of `model` over a data source (epoch 0, no updates). */
export async function evaluate(model: Model, data: DataSource): Promise<{ loss: number; accuracy: number; rows: number }> {
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

interface CkHeader {
  fingerprint: string
  phase: string
  epoch: number
  skip: number
  schedule: NewbobState
  optimizerT: number
  records: EpochRecord[]
  partial: { loss: number; rows: number; correct: number; counted: number; bad: number }
}

export async function train(model: Model, trainData: DataSource, heldout: DataSource, cfg: TrainerConfig,
  log: (r: EpochRecord | { phase: string; epoch: number; batch: number; loss: number; rows_per_s: number }) => void = () => {}): Promise<TrainResult> {
  const opt = new Optimizer(model.params, cfg.optimizer)
  let schedule = newbobStart(cfg.schedule)
  let records: EpochRecord[] = []
  let startEpoch = 0
  let skip = 0
  let partial = { loss: 0, rows: 0, correct: 0, counted: 0, bad: 0 }
  let best: Record<string, Float32Array> = model.params.toFlat()
  const ckPath = cfg.checkpoint?.path

  if (ckPath && cfg.resume) {
    const ck = loadCheckpoint<CkHeader>(ckPath)
    if (ck && ck.header.phase === cfg.phase) {
      if (ck.header.fingerprint !== cfg.checkpoint!.fingerprint) {
        throw new KtpError('checkpoint-mismatch', `${ckPath} was written by a run with other options or data; delete it or drop --resume`)
      }
      const params: Record<string, Float32Array> = {}
      const bestArr: Record<string, Float32Array> = {}
      const slots: Record<string, Float32Array> = {}
      for (const [k, v] of Object.entries(ck.arrays)) {
        if (k.startsWith('param:')) params[k.slice(6)] = v
        else if (k.startsWith('best:')) bestArr[k.slice(5)] = v
        else if (k.startsWith('slot:')) slots[k.slice(5)] = v
      }
      model.params.loadFlat(params)
      best = bestArr
      opt.load({ t: ck.header.optimizerT, slots })
      schedule = ck.header.schedule
      records = ck.header.records
      startEpoch = ck.header.epoch
      skip = ck.header.skip
      partial = ck.header.partial
    }
  }

  const save = (epoch: number, skipNow: number) => {
    if (!ckPath) return
    const arrays: Record<string, Float32Array> = {}
    for (const [k, v] of Object.entries(model.params.toFlat())) arrays[`param:${k}`] = v
    for (const [k, v] of Object.entries(best)) arrays[`best:${k}`] = v
    const st = opt.state()
    for (const [k, v] of Object.entries(st.slots)) arrays[`slot:${k}`] = v
    const header: CkHeader = { fingerprint: cfg.checkpoint!.fingerprint, phase: cfg.phase, epoch, skip: skipNow, schedule, optimizerT: st.t, records, partial }
    saveCheckpoint(ckPath, { header: header as unknown as Record<string, unknown>, arrays })
  }

  const names = model.params.names
  // The forward pass's logits are kept (tf.keep) to score training accuracy without a second pass.
  let captured: tf.Tensor | null = null
  const vg = (b: TrainBatch) => tf.valueAndGrads((...ps: tf.Tensor[]) => {
    const sub: Params = {}
    names.forEach((n, i) => (sub[n] = ps[i]))
    const logits = model.apply(b.x, sub)
    if (b.labels) captured = tf.keep(logits)
    return batchLoss(logits, b)
  })
  let lastSave = Date.now()

  // Data parallel (--workers N): parts 1…N−1 of every batch go to worker threads while this thread
  // computes part 0; their sum feeds the same clip/guard/optimizer step as the single-thread path.
  const pool = (cfg.workers ?? 1) > 1 && !schedule.done ? await GradientWorkers.start(model, cfg.workers!) : null
  const parallelStep = async (b: TrainBatch): Promise<tf.Tensor> => {
    const split = pool!.dispatch(model.params, b)
    let local: PartResult
    try {
      local = partGradients(model, split.local, split.localScale)
    } finally {
      disposeBatch(split.local)
    }
    try {
      const remote = await split.remote
      return tf.tidy(() => {
        const { grads: clipped, gate } = clipAndGuard(pool!.sumGradients(model.params, local.grads, remote), cfg.clip)
        opt.step(clipped, schedule.lr, gate)
        let value: tf.Scalar = local.value
        let correct: tf.Scalar = local.correct
        let counted: tf.Scalar = local.counted
        for (const r of remote) {
          if (r == null) continue
          value = tf.add(value, r.loss)
          correct = tf.add(correct, r.correct)
          counted = tf.add(counted, r.counted)
        }
        const w = b.mask ? tf.sum(b.mask) : tf.scalar(b.rows)
        return tf.stack([tf.where(tf.isFinite(value), tf.mul(value, w), tf.scalar(0)), gate, correct, counted])
      })
    } finally {
      tf.dispose([local.value, local.correct, local.counted, ...Object.values(local.grads)])
    }
  }

  try {
  for (let epoch = startEpoch; !schedule.done; epoch++) {
    const t0 = Date.now()
    let batchIdx = skip
    const pending: tf.Tensor[] = [] // per batch: [loss·rows, gate, correct, counted]
    let badRun = 0
    const flush = async () => {
      if (pending.length === 0) return
      const v = await tf.stack(pending).data()
      tf.dispose(pending)
      for (let i = 0; i < v.length; i += 4) {
        if (v[i + 1] > 0) {
          partial.loss += v[i]
          badRun = 0
        } else {
          partial.bad++
          badRun++
          if (badRun >= cfg.maxBadBatches) {
            throw new KtpError('diverged', `${cfg.phase}: ${badRun} batches in a row had a non-finite loss or gradient (epoch ${epoch + 1}); lower the learning rate or enable --clip`)
          }
        }
        partial.correct += v[i + 2]
        partial.counted += v[i + 3]
      }
      pending.length = 0
    }
    for await (const b of trainData.epoch(epoch, skip)) {
      const stats = pool ? await parallelStep(b) : tf.tidy(() => {
        const { value, grads } = vg(b)(names.map((n) => model.params.get(n)))
        const g: Params = {}
        names.forEach((n, i) => (g[n] = grads[i]))
        const { grads: clipped, gate } = clipAndGuard(g, cfg.clip)
        opt.step(clipped, schedule.lr, gate)
        const cc = captured ? correctCount(captured, b) : null
        if (captured) (captured.dispose(), (captured = null))
        const w = b.mask ? tf.sum(b.mask) : tf.scalar(b.rows)
        return tf.stack([tf.where(tf.isFinite(value), tf.mul(value, w), tf.scalar(0)), gate, cc?.correct ?? tf.scalar(0), cc?.counted ?? tf.scalar(0)])
      })
      partial.rows += b.rows
      disposeBatch(b)
      pending.push(stats)
      batchIdx++
      if (pending.length >= cfg.logEvery) {
        await flush()
        const s = (Date.now() - t0) / 1000
        log({ phase: cfg.phase, epoch: epoch + 1, batch: batchIdx, loss: partial.loss / Math.max(1, partial.rows), rows_per_s: Math.round(partial.rows / Math.max(s, 1e-3)) })
        if (cfg.checkpoint && Date.now() - lastSave > cfg.checkpoint.everyMinutes * 60_000) {
          save(epoch, batchIdx)
          lastSave = Date.now()
        }
      }
    }
    await flush()
    skip = 0
    const ev = await evaluate(model, heldout)
    const next = newbobUpdate(cfg.schedule, schedule, ev.accuracy)
    if (next.accepted) best = model.params.toFlat()
    else model.params.loadFlat(best) // newbob: a worse epoch is undone
    const seconds = (Date.now() - t0) / 1000
    const rec: EpochRecord = {
      phase: cfg.phase, epoch: epoch + 1, lr: schedule.lr,
      train_loss: partial.loss / Math.max(1, partial.rows),
      train_accuracy: partial.counted ? (100 * partial.correct) / partial.counted : null,
      heldout_loss: ev.loss, heldout_accuracy: ev.accuracy, accepted: next.accepted,
      rows_per_s: Math.round(partial.rows / Math.max(seconds, 1e-3)), bad_batches: partial.bad, seconds,
    }
    records.push(rec)
    log(rec)
    schedule = next
    partial = { loss: 0, rows: 0, correct: 0, counted: 0, bad: 0 }
    save(epoch + 1, 0)
    lastSave = Date.now()
  }
  } finally {
    await pool?.terminate()
  }
  model.params.loadFlat(best)
  opt.dispose()
  const bestAcc = Math.max(...records.filter((r) => r.accepted).map((r) => r.heldout_accuracy), -Infinity)
  return { epochs: records, bestHeldoutAccuracy: bestAcc }
}
