/**
 * `ktp features --jobs N`: a small pool of worker threads, each decoding and computing whole
 * utterances (features.ts `computeUtterance`). Both sides of the protocol live here:
 *   main → worker  { id, task }                       (a manifest row: a few strings and numbers)
 *   worker → main  { id, ok: true, frames, dim, data } with data's ArrayBuffer in the transfer
 *                  list (moved, not copied), or { id, ok: false, error: {code, utt, detail, file} }
 * Per-utterance failures come back as UttErrors; a worker that dies is fatal (KtpError), since
 * the utterances it held can no longer be accounted for.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import { KtpError, UttError } from '../schemas/errors.js'
import type { Features } from './dsp/kaldi-features.js'
import { computeUtterance, featurePlan, type ComputeContext, type FeatureTask, type FeaturesOptions, type Runner } from './features.js'

interface Init {
  ktpFeatures: true
  options: FeaturesOptions
  allowCommands: boolean
}

type Reply =
  | { id: number; ok: true; frames: number; dim: number; data: Float32Array }
  | { id: number; ok: false; error: { code: string; utt: string; detail: string; file?: string } }

/** The worker entry compiled next to this module (dist: .js; tests running the .ts sources: .ts). */
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './features-worker.ts' : './features-worker.js', import.meta.url)

export class FeaturePool {
  private readonly workers: Worker[] = []
  private readonly idle: Worker[] = []
  private readonly queue: { id: number; task: FeatureTask }[] = []
  private readonly pending = new Map<number, { resolve: (f: Features) => void; reject: (e: unknown) => void }>()
  private readonly owner = new Map<number, Worker>()
  private nextId = 0
  private dead: KtpError | null = null

  constructor(size: number, options: FeaturesOptions, allowCommands: boolean) {
    const init: Init = { ktpFeatures: true, options, allowCommands }
    for (let i = 0; i < size; i++) {
      const w = new Worker(WORKER_URL, { workerData: init })
      w.on('message', (m: Reply) => this.onReply(w, m))
      w.on('error', (e) => this.fail(new KtpError('worker-died', `a features worker failed: ${e.message}`)))
      w.on('exit', (code) => {
        if (code !== 0 && !this.dead) this.fail(new KtpError('worker-died', `a features worker exited with code ${code}`))
      })
      this.workers.push(w)
      this.idle.push(w)
    }
  }

  /** Number of tasks to keep in flight so no worker waits on the main thread. */
  get inFlight(): number {
    return 2 * this.workers.length
  }

  readonly run: Runner = (task) => new Promise<Features>((resolve, reject) => {
    if (this.dead) return reject(this.dead)
    const id = this.nextId++
    this.pending.set(id, { resolve, reject })
    this.queue.push({ id, task })
    this.dispatch()
  })

  private dispatch(): void {
    while (this.idle.length && this.queue.length) {
      const w = this.idle.pop()!
      const job = this.queue.shift()!
      this.owner.set(job.id, w)
      w.postMessage(job)
    }
  }

  private onReply(w: Worker, m: Reply): void {
    const p = this.pending.get(m.id)
    this.pending.delete(m.id)
    this.owner.delete(m.id)
    this.idle.push(w)
    this.dispatch()
    if (!p) return
    if (m.ok) p.resolve({ numFrames: m.frames, dim: m.dim, data: m.data })
    else p.reject(new UttError(m.error.code, m.error.utt, m.error.detail, m.error.file))
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

function serveWorker(init: Init): void {
  const ctx: ComputeContext = { plan: featurePlan(init.options), allowCommands: init.allowCommands }
  parentPort!.on('message', ({ id, task }: { id: number; task: FeatureTask }) => {
    computeUtterance(task, ctx).then(
      (f) => parentPort!.postMessage({ id, ok: true, frames: f.numFrames, dim: f.dim, data: f.data } satisfies Reply, [f.data.buffer as ArrayBuffer]),
      (err: unknown) => {
        const e = err instanceof UttError ? err : new UttError('error', task.utt, (err as Error)?.message ?? String(err))
        parentPort!.postMessage({ id, ok: false, error: { code: e.code, utt: e.utt, detail: detailOf(e), file: e.file } } satisfies Reply)
      },
    )
  })
}

if (!isMainThread && (workerData as Init | undefined)?.ktpFeatures) serveWorker(workerData as Init)
