import { type Stats, createWriteStream, statSync } from 'node:fs'
import type { RecordBatch, Schema } from 'apache-arrow'
import { KtpError } from '../../schemas/errors.js'
import { BatchEncoder } from './arrow-encoder.js'
import { fsError } from './fs-errors.js'
import { ResumableArrowWriter, type ResumableOptions } from './resumable-writer.js'

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
  private readonly name: string
  private broken = false
  private failure: unknown = null
  private readonly endOnFinish: boolean

  /**
   * `name`: for messages. `endOnFinish`: end `out` at finish() and wait until it is flushed (a
   * device or FIFO opened by path).
   */
  constructor(schema: Schema, out: NodeJS.WritableStream = process.stdout, endOnFinish = false, name = 'stdout') {
    this.enc = new BatchEncoder(schema, 'stream')
    this.out = out
    this.name = name
    this.endOnFinish = endOnFinish
    // A reader that stops early (`| head`) closes the pipe: that is a normal end, not a crash.
    // Any other write error (ENOSPC on /dev/full) fails the run at the next write, as one line.
    out.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') this.broken = true
      else this.failure ??= err
    })
  }

  get closed(): boolean {
    return this.broken
  }

  private check(): void {
    if (this.failure) throw fsError(this.failure, this.name, 'write')
  }

  /** Wait until the pipe wants more (or is gone), leaving no listeners behind. */
  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.out.removeListener('drain', done)
        this.out.removeListener('close', done)
        this.out.removeListener('error', done)
        resolve()
      }
      this.out.on('drain', done)
      this.out.on('close', done)
      this.out.on('error', done)
    })
  }

  private async put(chunks: Uint8Array[]): Promise<void> {
    for (const c of chunks) {
      this.check()
      if (this.broken) return
      if (!this.out.write(c)) await this.drained()
    }
    this.check()
  }

  async write(batch: RecordBatch): Promise<void> {
    await this.put(this.enc.encode(batch))
  }

  async finish(): Promise<void> {
    await this.put(this.enc.finish())
    if (this.endOnFinish && !this.broken) {
      const out = this.out
      await new Promise<void>((resolve) => {
        out.once('error', () => resolve())
        out.end(() => resolve())
      })
      this.check()
    }
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

/**
 * The sink for `-o PATH`: stdout for `-`; an Arrow stream written straight into an existing
 * device or FIFO (`-o /dev/null`: renaming a finished file over it would replace the device
 * itself); otherwise a resumable Arrow file. A directory is refused before any work is done.
 */
export function openSink(path: string, schema: Schema, opts: ResumableOptions): BatchSink {
  if (path === '-') return new StdoutSink(schema)
  let st: Stats | undefined
  try {
    st = statSync(path)
  } catch {
    /* does not exist yet (the writer reports a path it cannot create) */
  }
  if (st?.isDirectory())
    throw new KtpError(
      'fs-eisdir',
      `${path}: cannot write: it is a directory (give a file name, e.g. ${path}/out.arrow)`,
    )
  if (st && !st.isFile()) {
    return new StdoutSink(schema, createWriteStream(path, { flags: 'w' }), true, path)
  }
  return new FileSink(ResumableArrowWriter.open(path, schema, opts))
}

export function assertOutput(path: string | undefined): string {
  if (!path) throw new KtpError('usage', 'no output given: use -o FILE, or -o - for stdout')
  return path
}
