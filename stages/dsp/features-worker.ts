/**
 * `ktp features --jobs N`: a small pool of worker threads, each decoding and computing whole
 * utterances (features-compute.ts `computeUtterance`). Both sides of the protocol live here:
 *   main → worker  { jobs: [{ id, task }, …] }  (manifest rows: a few strings and numbers)
 *   worker → main  { replies: [Reply, …] }      one per job, in the same order; a result's data
 *                  ArrayBuffer is in the transfer list (moved, not copied)
 *   Reply = { id, ok: true, frames, dim, data } | { id, ok: false, error: {code, utt, detail, file} }
 * Jobs travel in chunks of up to CHUNK: a message each way per utterance cost more of the main
 * thread than encoding and writing the utterance (postMessage wakes the other thread every time).
 * Per-utterance failures come back as UttErrors; a worker that dies is fatal (KtpError), since
 * the utterances it held can no longer be accounted for.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import { KtpError, UttError } from '../../schemas/errors.js'
import type { Features } from './kaldi-features.js'
// Only the compute module: a worker need not load Arrow, highland or the stage's option schemas.
import {
  computeUtterance,
  type ComputeContext,
  type FeaturePlan,
  type FeatureTask,
  type Runner,
} from './features-compute.js'

interface Init {
  ktpFeatures: true
  /** The main thread's validated plan (structured clone: plain data). */
  plan: FeaturePlan
  allowCommands: boolean
}

interface Job {
  id: number
  task: FeatureTask
}

type Reply =
  | { id: number; ok: true; frames: number; dim: number; data: Float32Array }
  | { id: number; ok: false; error: { code: string; utt: string; detail: string; file?: string } }

/** Most utterances per message. */
const CHUNK = 8

/** The worker entry compiled next to this module (dist: .js; tests running the .ts sources: .ts). */
const WORKER_URL = new URL(
  import.meta.url.endsWith('.ts') ? './features-worker.ts' : './features-worker.js',
  import.meta.url,
)

export class FeaturePool {
  private readonly workers: Worker[] = []
  private readonly idle: Worker[] = []
  private readonly queue: Job[] = []
  private readonly pending = new Map<number, { resolve: (f: Features) => void; reject: (e: unknown) => void }>()
  private nextId = 0
  private dead: KtpError | null = null

  constructor(size: number, plan: FeaturePlan, allowCommands: boolean) {
    const init: Init = { ktpFeatures: true, plan, allowCommands }
    for (let i = 0; i < size; i++) {
      const w = new Worker(WORKER_URL, { workerData: init })
      w.on('message', (m: { replies: Reply[] }) => this.onReplies(w, m.replies))
      w.on('error', (e) => this.fail(new KtpError('worker-died', `a features worker failed: ${e.message}`)))
      w.on('exit', (code) => {
        if (code !== 0 && !this.dead)
          this.fail(new KtpError('worker-died', `a features worker exited with code ${code}`))
      })
      this.workers.push(w)
      this.idle.push(w)
    }
  }

  /** Number of tasks to keep in flight: a chunk being computed and one queued per worker. */
  get inFlight(): number {
    return 2 * CHUNK * this.workers.length
  }

  readonly run: Runner = (task) =>
    new Promise<Features>((resolve, reject) => {
      if (this.dead) return reject(this.dead)
      const id = this.nextId++
      this.pending.set(id, { resolve, reject })
      this.queue.push({ id, task })
      // The stage asks for its tasks one after another in the same tick: dispatch once they are all in.
      if (this.queue.length === 1) queueMicrotask(() => this.dispatch())
    })

  private dispatch(): void {
    while (this.idle.length && this.queue.length) {
      // Share what is queued among the idle workers rather than giving the first one everything.
      const n = Math.min(CHUNK, Math.ceil(this.queue.length / this.idle.length))
      this.idle.pop()!.postMessage({ jobs: this.queue.splice(0, n) })
    }
  }

  private onReplies(w: Worker, replies: Reply[]): void {
    this.idle.push(w)
    this.dispatch()
    for (const m of replies) {
      const p = this.pending.get(m.id)
      this.pending.delete(m.id)
      if (!p) continue
      if (m.ok) p.resolve({ numFrames: m.frames, dim: m.dim, data: m.data })
      else p.reject(new UttError(m.error.code, m.error.utt, m.error.detail, m.error.file))
    }
  }

  private fail(e: KtpError): void {
    this.dead = e
    for (const p of this.pending.values()) p.reject(e)
    this.pending.clear()
  }

  /** Stop the workers (also with work pending: an interrupted run). */
  async close(): Promise<void> {
    this.dead ??= new KtpError('closed', 'the features worker pool is closed')
    await Promise.all(this.workers.map((w) => w.terminate()))
  }
}

/** What an UttError said, without the "utt (file): " prefix its constructor adds. */
function detailOf(e: UttError): string {
  const prefix = `${e.utt}${e.file ? ` (${e.file})` : ''}: `
  return e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message
}

async function computeJob({ id, task }: Job, ctx: ComputeContext): Promise<Reply> {
  try {
    const f = await computeUtterance(task, ctx)
    return { id, ok: true, frames: f.numFrames, dim: f.dim, data: f.data }
  } catch (err) {
    const e = err instanceof UttError ? err : new UttError('error', task.utt, (err as Error)?.message ?? String(err))
    return { id, ok: false, error: { code: e.code, utt: e.utt, detail: detailOf(e), file: e.file } }
  }
}

function serveWorker(init: Init): void {
  // the plan cache in kaldi-features keys on this object: one per worker, frozen as on the main thread
  const plan: FeaturePlan = { ...init.plan, kaldi: Object.freeze(init.plan.kaldi) }
  const ctx: ComputeContext = { plan, allowCommands: init.allowCommands }
  parentPort!.on('message', async ({ jobs }: { jobs: Job[] }) => {
    const replies: Reply[] = []
    for (const job of jobs) replies.push(await computeJob(job, ctx))
    const transfer = new Set(replies.flatMap((r) => (r.ok ? [r.data.buffer as ArrayBuffer] : [])))
    parentPort!.postMessage({ replies }, [...transfer])
  })
}

if (!isMainThread && (workerData as Init | undefined)?.ktpFeatures) serveWorker(workerData as Init)
