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
 * Messages:
 *   main → worker   { type: 'step', id, version, scale, part }   part = a slice of the batch's rows
 *                                                                  (typed arrays moved, not copied)
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
 */
import * as tf from '@tensorflow/tfjs'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { KtpError } from '../../schemas/errors.js'
import type { ModelSpec } from '../nn/config.js'
import type { Model } from '../nn/model.js'
import type { ParamSet, Params } from '../nn/params.js'
import { batchLoss, correctCount, type TrainBatch } from './trainer.js'

/** A tensor on the wire: its values (moved with the message) and shape. */
export interface WireTensor {
  data: Float32Array | Int32Array
  shape: number[]
}

export interface WirePart {
  x: WireTensor
  terms: { targets: WireTensor; temperature: number; weight: number }[]
  mask?: WireTensor
  labels?: WireTensor
  rows: number
}

export interface WorkerInit {
  ktpTrainWorker: true
  index: number
  spec: ModelSpec
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

export interface PartResult {
  /** scale · batchLoss of the part. */
  value: tf.Scalar
  /** Gradients of `value`. */
  grads: Params
  correct: tf.Scalar
  counted: tf.Scalar
}

/**
 * Loss (times `scale`), gradients and accuracy counts of one part, on `model`'s own parameters:
 * the computation every thread runs for its part. The caller disposes the result.
 */
export function partGradients(model: Model, b: TrainBatch, scale: number): PartResult {
  const names = model.params.names
  return tf.tidy(() => {
    let captured: tf.Tensor | null = null
    const f = (...ps: tf.Tensor[]): tf.Scalar => {
      const sub: Params = {}
      names.forEach((n, i) => (sub[n] = ps[i]))
      const logits = model.apply(b.x, sub)
      if (b.labels) captured = tf.keep(logits)
      return tf.mul(batchLoss(logits, b), scale) as tf.Scalar
    }
    const { value, grads } = tf.valueAndGrads(f)(names.map((n) => model.params.get(n)))
    const g: Params = {}
    names.forEach((n, i) => (g[n] = grads[i]))
    const cc = captured ? correctCount(captured, b) : null
    if (captured) (captured as tf.Tensor).dispose()
    return { value, grads: g, correct: cc?.correct ?? tf.scalar(0), counted: cc?.counted ?? tf.scalar(0) }
  })
}

/** Tensors of a wire part (the caller disposes them with the batch). */
export function partFromWire(p: WirePart): TrainBatch {
  const t = (w: WireTensor, dtype: 'float32' | 'int32' = 'float32') => tf.tensor(w.data, w.shape, dtype)
  return {
    x: t(p.x),
    terms: p.terms.map((term) => ({ targets: t(term.targets), temperature: term.temperature, weight: term.weight })),
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
  private version = 0
  private nextId = 0
  private pending = new Map<number, { k: number; resolve: (r: Remote) => void; reject: (e: Error) => void }>()
  private dead: Error | null = null
  private closing = false

  private constructor(parts: number, workers: Worker[], sabs: { params: SharedArrayBuffer; grads: SharedArrayBuffer; ctrl: SharedArrayBuffer }, size: number) {
    this.parts = parts
    this.workers = workers
    this.paramView = new Float32Array(sabs.params)
    this.gradView = new Float32Array(sabs.grads)
    this.ctrl = new Int32Array(sabs.ctrl)
    this.size = size
  }

  /** Start `parts − 1` workers for `model` on the current tfjs backend; resolves once all are ready. */
  static async start(model: Model, parts: number, backend: string = tf.getBackend()): Promise<GradientWorkers> {
    if (!Number.isInteger(parts) || parts < 2) throw new KtpError('usage', `expected --workers ≥ 2 for a worker pool, got ${parts}`)
    const entry = workerEntryPath()
    if (!existsSync(entry)) throw new KtpError('worker-missing', `training worker ${entry} not found; build ktp first (npx tsc -p .)`)
    const size = model.params.size
    const sabs = {
      params: new SharedArrayBuffer(4 * size),
      grads: new SharedArrayBuffer(4 * size * (parts - 1)),
      ctrl: new SharedArrayBuffer(4 * parts),
    }
    const workers: Worker[] = []
    const ready: Promise<void>[] = []
    for (let k = 1; k < parts; k++) {
      const init: WorkerInit = { ktpTrainWorker: true, index: k, spec: model.spec, backend, ...sabs, size }
      const w = new Worker(entry, { workerData: init })
      workers.push(w)
      ready.push(new Promise<void>((resolve, reject) => {
        const onMsg = (m: FromWorker) => {
          if (m.type === 'ready') resolve()
          else if (m.type === 'init-error') reject(new KtpError('worker-failed', `training worker ${k} failed to start: ${m.message}`))
          if (m.type === 'ready' || m.type === 'init-error') w.off('message', onMsg)
        }
        w.on('message', onMsg)
        w.once('error', (e) => reject(new KtpError('worker-failed', `training worker ${k} failed to start: ${e.message}`)))
        w.once('exit', (code) => reject(new KtpError('worker-failed', `training worker ${k} exited with code ${code} while starting`)))
      }))
    }
    try {
      await Promise.all(ready)
    } catch (err) {
      await Promise.all(workers.map((w) => w.terminate()))
      throw err
    }
    const pool = new GradientWorkers(parts, workers, sabs, size)
    workers.forEach((w, i) => pool.watch(w, i + 1))
    return pool
  }

  private watch(w: Worker, k: number): void {
    w.removeAllListeners()
    w.on('message', (m: FromWorker) => {
      if (m.type !== 'done' && m.type !== 'error') return
      const p = this.pending.get(m.id)
      if (!p) return
      this.pending.delete(m.id)
      if (m.type === 'error') return p.reject(new KtpError('worker-failed', `training worker ${k}: ${m.message}`))
      if (Atomics.load(this.ctrl, k) !== m.id) {
        return p.reject(new KtpError('worker-failed', `training worker ${k}: gradient of step ${m.id} missing from shared memory`))
      }
      p.resolve({ loss: m.loss, correct: m.correct, counted: m.counted })
    })
    w.on('error', (e) => this.fail(new KtpError('worker-failed', `training worker ${k} crashed: ${e.message}`)))
    w.on('messageerror', (e) => this.fail(new KtpError('worker-failed', `training worker ${k}: unreadable message (${e.message})`)))
    w.on('exit', (code) => {
      if (!this.closing) this.fail(new KtpError('worker-failed', `training worker ${k} exited unexpectedly (code ${code})`))
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
  async dispatch(params: ParamSet, b: TrainBatch): Promise<Split> {
    if (this.dead) throw this.dead
    const N = this.parts
    const R = b.x.shape[0]
    const per = b.rows / R // frames per row (1, or the chunk length)
    const bounds = partBounds(R, N)
    const sliceAll = (t: tf.Tensor, s: number, e: number) => tf.slice(t, [s, ...t.shape.slice(1).map(() => 0)], [e - s, ...t.shape.slice(1)])

    // Shares of the target frames: mask sums, or frame counts.
    const maskData = b.mask ? ((await b.mask.data()) as Float32Array) : null
    const maskRow = b.mask ? b.mask.size / R : 0
    const weightOf = (s: number, e: number) => {
      if (!maskData) return (e - s) * per
      let sum = 0
      for (let i = s * maskRow; i < e * maskRow; i++) sum += maskData[i]
      return sum
    }
    const total = weightOf(0, R)
    const scale = (k: number) => (total > 0 ? weightOf(bounds[k], bounds[k + 1]) / total : 0)

    // Host copies of the tensors the workers need (parts 1…N−1 only).
    const hasRemote = bounds[N] > bounds[1]
    const wire = async (t: tf.Tensor) => ({ data: (await t.data()) as Float32Array | Int32Array, shape: t.shape })
    const host = hasRemote
      ? {
          x: await wire(b.x),
          terms: await Promise.all(b.terms.map((term) => wire(term.targets))),
          mask: maskData ? { data: maskData, shape: b.mask!.shape } : undefined,
          labels: b.labels ? await wire(b.labels) : undefined,
        }
      : null
    const cut = (w: WireTensor, s: number, e: number): WireTensor => {
      const row = w.data.length / R
      return { data: w.data.slice(s * row, e * row), shape: [e - s, ...w.shape.slice(1)] }
    }

    if (hasRemote) {
      params.pack(params.tensors(), this.paramView)
      this.version = (this.version + 1) | 0
      Atomics.store(this.ctrl, 0, this.version)
    }
    const remote: Promise<Remote | null>[] = []
    for (let k = 1; k < N; k++) {
      const s = bounds[k]
      const e = bounds[k + 1]
      if (e <= s || host == null) {
        remote.push(Promise.resolve(null))
        continue
      }
      const part: WirePart = {
        x: cut(host.x, s, e),
        terms: b.terms.map((term, i) => ({ targets: cut(host.terms[i], s, e), temperature: term.temperature, weight: term.weight })),
        mask: host.mask ? cut(host.mask, s, e) : undefined,
        labels: host.labels ? cut(host.labels, s, e) : undefined,
        rows: (e - s) * per,
      }
      const id = this.nextId++
      const msg: ToWorker = { type: 'step', id, version: this.version, scale: scale(k), part }
      const transfer = [part.x, ...part.terms.map((t) => t.targets), part.mask, part.labels]
        .filter((w): w is WireTensor => w != null).map((w) => w.data.buffer as ArrayBuffer)
      remote.push(new Promise<Remote>((resolve, reject) => {
        this.pending.set(id, { k, resolve, reject })
        this.workers[k - 1].postMessage(msg, transfer)
      }))
    }
    const e0 = bounds[1]
    const local: TrainBatch = e0 === R
      ? { x: tf.clone(b.x), terms: b.terms.map((t) => ({ ...t, targets: tf.clone(t.targets) })), mask: b.mask && tf.clone(b.mask), labels: b.labels && tf.clone(b.labels), rows: b.rows }
      : {
          x: sliceAll(b.x, 0, e0),
          terms: b.terms.map((t) => ({ ...t, targets: sliceAll(t.targets, 0, e0) })),
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
        const g = this.gradView.slice(base + slot.offset, base + slot.offset + slot.size) // a private copy
        out[slot.name] = tf.add(out[slot.name], tf.tensor(g, slot.shape, 'float32'))
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
