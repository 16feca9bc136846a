import cliProgress from 'cli-progress'

/**
 * Progress on stderr (stdout carries data only): a cli-progress bar on a terminal, a plain line
 * every `intervalMs` otherwise (logs of nightly jobs stay readable), nothing with --quiet.
 */
export interface ProgressOptions {
  label: string
  total?: number
  quiet?: boolean
  intervalMs?: number
  stream?: NodeJS.WriteStream
}

export class Progress {
  private readonly opts: ProgressOptions
  private bar: cliProgress.SingleBar | null = null
  private lastLine = Date.now()
  private readonly started = Date.now()
  done = 0
  failed = 0
  frames = 0

  constructor(opts: ProgressOptions) {
    this.opts = opts
    const stream = opts.stream ?? process.stderr
    if (!opts.quiet && stream.isTTY && opts.total) {
      this.bar = new cliProgress.SingleBar(
        {
          stream,
          format: `${opts.label} [{bar}] {value}/{total} utts | {fps} frames/s | failed {failed}`,
          hideCursor: false,
        },
        cliProgress.Presets.shades_classic,
      )
      this.bar.start(opts.total, 0, { fps: 0, failed: 0 })
    }
  }

  private fps(): number {
    const s = (Date.now() - this.started) / 1000
    return s > 0 ? Math.round(this.frames / s) : 0
  }

  tick(frames = 0): void {
    this.done++
    this.frames += frames
    this.render()
  }

  fail(): void {
    this.failed++
    this.render()
  }

  private render(): void {
    if (this.opts.quiet) return
    if (this.bar) {
      this.bar.update(this.done + this.failed, { fps: this.fps(), failed: this.failed })
      return
    }
    const every = this.opts.intervalMs ?? 10_000
    if (Date.now() - this.lastLine >= every) {
      this.lastLine = Date.now()
      const of = this.opts.total ? ` of ${this.opts.total}` : ''
      ;(this.opts.stream ?? process.stderr).write(
        `${this.opts.label}: ${this.done + this.failed}${of} utterances, ${this.fps()} frames/s, failed ${this.failed}\n`,
      )
    }
  }

  stop(): void {
    this.bar?.stop()
    this.bar = null
  }
}
