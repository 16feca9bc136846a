/**
 * `--workers N`: synchronous data-parallel training over `worker_threads` (DESIGN §4: wasm threads
 * do not start under Node, so the second core is reached by a second tfjs in a second thread).
 *
 * N parts per step, N threads: the main thread computes part 0 itself, workers 1…N−1 the others.
 * Each worker holds its own tfjs (same backend as the main thread) and a replica of the model
 * built from the same spec; its parameter values always come from the main thread.
 *
 * Shared memory (SharedArrayBuffer, one float32 flat layout per ParamSet, see params.ts):
 *   params  [size]            the main thread's current parameters, published before every step
 *   grads   [(N−1) · size]    worker k writes its part's gradient at (k−1)·size
 *   ctrl    Int32 [1 + N−1]   ctrl[0] = version of `params`; ctrl[k] = last step worker k finished.
 *                             Atomics store/load around the plain writes order them across threads.
 *   input k (one per worker, grown on demand) worker k's rows of the batch: x, targets (dense, or
 *                             sparse ids/probs/rest), mask, labels.
 * Messages:
 *   main → worker   { type: 'step', id, version, scale, part }   part = views into input k (a typed
 *                                                                  array over shared memory clones
 *                                                                  as a view: nothing is copied)
 *   worker → main   { type: 'done', id, loss, correct, counted }  (gradient already in `grads`)
 *                   { type: 'error', id, message }                 (a failed step)
 *                   { type: 'ready' } | { type: 'init-error', message } (start-up)
 *
 * One step: the batch's rows (frames, or chunks for sequence models) are split into N contiguous
 * parts at ⌈k·R/N⌉. Part k's loss is the same `batchLoss` (frame-averaged within the part) times
 * scale_k = W_k / W, W_k its share of target frames (mask sum, or frame count without a mask),
 * so Σ_k scale_k·L_k is exactly the full batch's frame-averaged loss and Σ_k of the gradients its
 * gradient. The main thread adds the parts in the fixed order 0, 1, …, N−1 and runs the
 * unchanged clip + NaN guard + optimizer step on its own parameters. Same inputs and worker count
 * → the same sums in the same order → identical weights; a different N only changes rounding.
 *
 * Copies: no buffer is allocated per step. On the wasm backend values are read straight from the
 * wasm heap into shared memory (`readInto`), and tensors are created from shared-memory views
 * (tfjs-wasm copies them into its heap at creation). On this machine a fresh 6 MB JS buffer per
 * step (what dataSync and slice allocate) cost 20–90 ms in page faults, a copy into a warm buffer
 * 0.3 ms. Variables are never written in place: tfjs-wasm caches XNNPACK operators (with packed
 * weights) by tensor, so parameters are loaded with `assign` of a new tensor.
 */
import * as tf from '@tensorflow/tfjs'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { KtpError } from '../../schemas/errors.js'
import type { Model, ModelSpecOf, ParamSet, Params } from '../nn/index.js'
import { hostValues, packInto, tensorFrom } from './tensors.js'
import { mapTerm, termTensors, type TargetTerm, type TrainBatch } from './loss.js'

/** A tensor on the wire: its values (moved with the message) and shape. */
export interface WireTensor {
  data: Float32Array | Int32Array
  shape: number[]
}

/** A target term on the wire: dense targets, or sparse ids (int32), probs and rest. */
export type WireTerm = { temperature: number; weight: number } & (
  | { targets: WireTensor; sparse?: undefined }
  | { targets?: undefined; sparse: { ids: WireTensor; probs: WireTensor; rest: WireTensor } }
)

function termToWire(term: TargetTerm, f: (t: tf.Tensor) => WireTensor): WireTerm {
  const { temperature, weight } = term
  if (term.sparse)
    return {
      temperature,
      weight,
      sparse: { ids: f(term.sparse.ids), probs: f(term.sparse.probs), rest: f(term.sparse.rest) },
    }
  return { temperature, weight, targets: f(term.targets) }
}

function termFromWire(term: WireTerm, f: (w: WireTensor, dtype: 'float32' | 'int32') => tf.Tensor): TargetTerm {
  const { temperature, weight } = term
  if (term.sparse)
    return {
      temperature,
      weight,
      sparse: {
        ids: f(term.sparse.ids, 'int32'),
        probs: f(term.sparse.probs, 'float32'),
        rest: f(term.sparse.rest, 'float32'),
      },
    }
  return { temperature, weight, targets: f(term.targets, 'float32') }
}

export interface WirePart {
  x: WireTensor
  terms: WireTerm[]
  mask?: WireTensor
  labels?: WireTensor
  rows: number
}

export interface WorkerInit {
  ktpTrainWorker: true
  index: number
  spec: ModelSpecOf
  backend: string
  params: SharedArrayBuffer
  grads: SharedArrayBuffer
  ctrl: SharedArrayBuffer
  size: number
}

export type ToWorker = { type: 'step'; id: number; version: number; scale: number; part: WirePart }

export type FromWorker =
  | { type: 'ready' }
  | { type: 'init-error'; message: string }
  | { type: 'done'; id: number; loss: number; correct: number; counted: number }
  | { type: 'error'; id: number; message: string }

/** The compiled worker entry: next to this module in dist/, or dist/ when running from sources. */
export function workerEntryPath(): string {
  const here = dirname(fileURLToPath(import.meta.url))
  return import.meta.url.endsWith('.ts')
    ? join(here, '..', '..', 'dist', 'stages', 'train', 'worker-entry.js')
    : join(here, 'worker-entry.js')
}

/** Row boundaries of N contiguous parts of R rows: part k is [b[k], b[k+1]); part 0 is never empty. */
export function partBounds(R: number, N: number): number[] {
  return Array.from({ length: N + 1 }, (_, k) => Math.ceil((k * R) / N))
}

/** Tensors of a wire part (the caller disposes them with the batch). */
export function partFromWire(p: WirePart): TrainBatch {
  const t = (w: WireTensor, dtype: 'float32' | 'int32' = 'float32') => tensorFrom(w.data, w.shape, dtype)
  return {
    x: t(p.x),
    terms: p.terms.map((term) => termFromWire(term, t)),
    mask: p.mask ? t(p.mask) : undefined,
    labels: p.labels ? t(p.labels, 'int32') : undefined,
    rows: p.rows,
  }
}

interface Remote {
  loss: number
  correct: number
  counted: number
}

export interface Split {
  /** Part 0, computed on the main thread: slices of the batch (the caller disposes them). */
  local: TrainBatch
  localScale: number
  /** Results of parts 1…N−1 (null: an empty part), resolved when every worker has finished. */
  remote: Promise<(Remote | null)[]>
}

/** A pool of N−1 gradient workers; with the main thread, N parts per batch. */
export class GradientWorkers {
  readonly parts: number
  private readonly workers: Worker[]
  private readonly paramView: Float32Array
  private readonly gradView: Float32Array
  private readonly ctrl: Int32Array
  private readonly size: number
  /** Per worker: shared memory for its rows of the batch (grown on demand). */
  private readonly inputs: SharedArrayBuffer[] = []
  private version = 0
  private nextId = 0
  private pending = new Map<number, { k: number; resolve: (r: Remote) => void; reject: (e: Error) => void }>()
  private dead: Error | null = null
  private closing = false

  private constructor(
    parts: number,
    workers: Worker[],
    sabs: { params: SharedArrayBuffer; grads: SharedArrayBuffer; ctrl: SharedArrayBuffer },
    size: number,
  ) {
    this.parts = parts
    this.workers = workers
    this.paramView = new Float32Array(sabs.params)
    this.gradView = new Float32Array(sabs.grads)
    this.ctrl = new Int32Array(sabs.ctrl)
    this.size = size
  }

  /** Start `parts − 1` workers for `model` on the current tfjs backend; resolves once all are ready. */
  static async start(model: Model, parts: number, backend: string = tf.getBackend()): Promise<GradientWorkers> {
    if (!Number.isInteger(parts) || parts < 2)
      throw new KtpError('usage', `expected --workers ≥ 2 for a worker pool, got ${parts}`)
    const entry = workerEntryPath()
    if (!existsSync(entry))
      throw new KtpError('worker-missing', `training worker ${entry} not found; build ktp first (npx tsc -p .)`)
    const size = model.params.size
    const sabs = {
      params: new SharedArrayBuffer(4 * size),
      grads: new SharedArrayBuffer(4 * size * (parts - 1)),
      ctrl: new SharedArrayBuffer(4 * parts),
    }
    const workers: Worker[] = []
    const pool = new GradientWorkers(parts, workers, sabs, size)
    const ready: Promise<void>[] = []
    for (let k = 1; k < parts; k++) {
      const init: WorkerInit = { ktpTrainWorker: true, index: k, spec: model.spec, backend, ...sabs, size }
      const w = new Worker(entry, { workerData: init })
      workers.push(w)
      ready.push(new Promise<void>((resolve, reject) => pool.watch(w, k, resolve, reject)))
    }
    try {
      await Promise.all(ready)
    } catch (err) {
      await pool.terminate()
      throw err
    }
    pool.started = true
    return pool
  }

  private started = false

  /** One set of listeners per worker for its whole life: start-up, steps, crashes. */
  private watch(w: Worker, k: number, ready: () => void, notReady: (e: Error) => void): void {
    const die = (why: string) => {
      const err = new KtpError(
        'worker-failed',
        this.started ? `training worker ${k} ${why}` : `training worker ${k} failed to start: ${why}`,
      )
      if (!this.started) notReady(err)
      else this.fail(err)
    }
    w.on('message', (m: FromWorker) => {
      if (m.type === 'ready') return ready()
      if (m.type === 'init-error') return die(m.message)
      const p = this.pending.get(m.id)
      if (!p) return
      this.pending.delete(m.id)
      if (m.type === 'error') return p.reject(new KtpError('worker-failed', `training worker ${k}: ${m.message}`))
      if (Atomics.load(this.ctrl, k) !== m.id) {
        return p.reject(
          new KtpError('worker-failed', `training worker ${k}: gradient of step ${m.id} missing from shared memory`),
        )
      }
      p.resolve({ loss: m.loss, correct: m.correct, counted: m.counted })
    })
    w.on('error', (e) => die(`crashed: ${e.message}`))
    w.on('messageerror', (e) => die(`sent an unreadable message (${e.message})`))
    w.on('exit', (code) => {
      if (!this.closing) die(`exited unexpectedly (code ${code})`)
    })
  }

  private fail(err: Error): void {
    if (!this.dead) this.dead = err
    for (const p of this.pending.values()) p.reject(this.dead)
    this.pending.clear()
  }

  /**
   * Publish `params`, split `b` and send parts 1…N−1 to the workers. Returns part 0 (slices of
   * the batch) for the main thread to compute while the workers run.
   */
  dispatch(params: ParamSet, b: TrainBatch): Split {
    if (this.dead) throw this.dead
    const N = this.parts
    const R = b.x.shape[0]
    const per = b.rows / R // frames per row (1, or the chunk length)
    const bounds = partBounds(R, N)
    const sliceAll = (t: tf.Tensor, s: number, e: number) =>
      tf.slice(t, [s, ...t.shape.slice(1).map(() => 0)], [e - s, ...t.shape.slice(1)])

    // Shares of the target frames: mask sums, or frame counts.
    const maskData = b.mask ? Float32Array.from(hostValues(b.mask)) : null
    const maskRow = b.mask ? b.mask.size / R : 0
    const weightOf = (s: number, e: number) => {
      if (!maskData) return (e - s) * per
      let sum = 0
      for (let i = s * maskRow; i < e * maskRow; i++) sum += maskData[i]
      return sum
    }
    const total = weightOf(0, R)
    const scale = (k: number) => (total > 0 ? weightOf(bounds[k], bounds[k + 1]) / total : 0)

    // Rows of parts 1…N−1, copied into each worker's shared input region.
    const srcs: tf.Tensor[] = [
      b.x,
      ...b.terms.flatMap(termTensors),
      ...(b.mask ? [b.mask] : []),
      ...(b.labels ? [b.labels] : []),
    ]
    const remote: Promise<Remote | null>[] = []
    if (bounds[N] > bounds[1]) {
      packInto(params, params.tensors(), this.paramView)
      this.version = (this.version + 1) | 0
      Atomics.store(this.ctrl, 0, this.version)
    }
    for (let k = 1; k < N; k++) {
      const s = bounds[k]
      const e = bounds[k + 1]
      if (e <= s) {
        remote.push(Promise.resolve(null))
        continue
      }
      const bytes = srcs.reduce((a, t) => a + 4 * (t.size / R) * (e - s), 0)
      if ((this.inputs[k - 1]?.byteLength ?? 0) < bytes)
        this.inputs[k - 1] = new SharedArrayBuffer(Math.ceil((bytes * 1.25) / 4096) * 4096)
      const sab = this.inputs[k - 1]
      let off = 0
      const cut = (t: tf.Tensor): WireTensor => {
        const row = t.size / R
        const src = hostValues(t).subarray(s * row, e * row)
        const dst = t.dtype === 'int32' ? new Int32Array(sab, off, src.length) : new Float32Array(sab, off, src.length)
        dst.set(src)
        off += 4 * src.length
        return { data: dst, shape: [e - s, ...t.shape.slice(1)] }
      }
      const part: WirePart = {
        x: cut(b.x),
        terms: b.terms.map((term) => termToWire(term, cut)),
        mask: b.mask ? cut(b.mask) : undefined,
        labels: b.labels ? cut(b.labels) : undefined,
        rows: (e - s) * per,
      }
      const id = this.nextId++
      const msg: ToWorker = { type: 'step', id, version: this.version, scale: scale(k), part }
      remote.push(
        new Promise<Remote>((resolve, reject) => {
          this.pending.set(id, { k, resolve, reject })
          this.workers[k - 1].postMessage(msg)
        }),
      )
    }
    const e0 = bounds[1]
    const local: TrainBatch =
      e0 === R
        ? {
            x: tf.clone(b.x),
            terms: b.terms.map((t) => mapTerm(t, tf.clone)),
            mask: b.mask && tf.clone(b.mask),
            labels: b.labels && tf.clone(b.labels),
            rows: b.rows,
          }
        : {
            x: sliceAll(b.x, 0, e0),
            terms: b.terms.map((t) => mapTerm(t, (x) => sliceAll(x, 0, e0))),
            mask: b.mask && sliceAll(b.mask, 0, e0),
            labels: b.labels && sliceAll(b.labels, 0, e0),
            rows: e0 * per,
          }
    // Settle every part before reporting a failure, so no worker still writes when we move on.
    const all = Promise.allSettled(remote).then((rs) => {
      const bad = rs.find((r): r is PromiseRejectedResult => r.status === 'rejected')
      if (bad) throw bad.reason
      return rs.map((r) => (r as PromiseFulfilledResult<Remote | null>).value)
    })
    all.catch(() => {}) // observed by the caller; avoid an unhandled rejection in the meantime
    return { local, localScale: scale(0), remote: all }
  }

  /** Σ of the parts' gradients in the fixed order 0, 1, …, N−1 (new tensors; call inside tidy). */
  sumGradients(params: ParamSet, local: Params, remote: (Remote | null)[]): Params {
    const out: Params = { ...local }
    remote.forEach((r, i) => {
      if (r == null) return
      const base = i * this.size
      for (const slot of params.layout) {
        const g = tensorFrom(this.gradView.subarray(base + slot.offset, base + slot.offset + slot.size), slot.shape)
        out[slot.name] = tf.add(out[slot.name], g)
      }
    })
    return out
  }

  /** Stop every worker (idempotent). */
  async terminate(): Promise<void> {
    if (this.closing) return
    this.closing = true
    this.fail(new KtpError('worker-failed', 'training workers terminated'))
    await Promise.all(this.workers.map((w) => w.terminate()))
  }
}
