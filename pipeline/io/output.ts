import type { RecordBatch, Schema } from 'apache-arrow'
import { KtpError } from '../../schemas/errors.js'
import { BatchEncoder } from './arrow-encoder.js'
import type { ResumableArrowWriter } from './resumable-writer.js'

/**
 * Where a stage's utterances go: an Arrow IPC *stream* on stdout for `-` (pipes cannot seek),
 * or a resumable Arrow *file* for a path.
 */
export interface BatchSink {
  /** Utterances an earlier, interrupted run already finished (empty for stdout). */
  readonly done: Set<string>
  write(batch: RecordBatch, ord: number): Promise<void>
  finish(): Promise<void>
  /** Interrupted: keep what is finished for the next run. */
  suspend(): void
}

export class StdoutSink implements BatchSink {
  readonly done = new Set<string>()
  private readonly enc: BatchEncoder
  private readonly out: NodeJS.WritableStream
  private broken = false

  constructor(schema: Schema, out: NodeJS.WritableStream = process.stdout) {
    this.enc = new BatchEncoder(schema, 'stream')
    this.out = out
    // A reader that stops early (`| head`) closes the pipe: that is a normal end, not a crash.
    out.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') this.broken = true
      else throw err
    })
  }

  get closed(): boolean {
    return this.broken
  }

  /** Wait until the pipe wants more (or is gone), leaving no listeners behind. */
  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.out.removeListener('drain', done)
        this.out.removeListener('close', done)
        resolve()
      }
      this.out.on('drain', done)
      this.out.on('close', done)
    })
  }

  private async put(chunks: Uint8Array[]): Promise<void> {
    for (const c of chunks) {
      if (this.broken) return
      if (!this.out.write(c)) await this.drained()
    }
  }

  async write(batch: RecordBatch): Promise<void> {
    await this.put(this.enc.encode(batch))
  }

  async finish(): Promise<void> {
    await this.put(this.enc.finish())
  }

  suspend(): void {}
}

export class FileSink implements BatchSink {
  private readonly w: ResumableArrowWriter
  constructor(w: ResumableArrowWriter) {
    this.w = w
  }
  get done(): Set<string> {
    return this.w.done
  }
  async write(batch: RecordBatch, ord: number): Promise<void> {
    this.w.write(batch, ord)
  }
  async finish(): Promise<void> {
    await this.w.finish()
  }
  suspend(): void {
    this.w.suspend()
  }
}

export function assertOutput(path: string | undefined): string {
  if (!path) throw new KtpError('usage', 'no output given: use -o FILE, or -o - for stdout')
  return path
}
