/**
 * The two kinds of failure ktp distinguishes, following Kaldi's table tools:
 * - `UttError`: one utterance is bad; it is reported with its id and skipped, the run goes on and
 *   exits 1 at the end ("done N, failed M").
 * - `KtpError`: the run cannot go on (corrupt stream, wrong schema, bad option); exit 2.
 * Both carry a stable `code` so tests and callers can tell causes apart without parsing messages.
 */
export class KtpError extends Error {
  readonly code: string
  constructor(code: string, message: string) {
    super(message)
    this.name = 'KtpError'
    this.code = code
  }
}

export class UttError extends Error {
  readonly code: string
  readonly utt: string
  readonly file?: string
  constructor(code: string, utt: string, message: string, file?: string) {
    super(`${utt}${file ? ` (${file})` : ''}: ${message}`)
    this.name = 'UttError'
    this.code = code
    this.utt = utt
    this.file = file
  }
}

/** Wrap anything thrown while processing one utterance so it names that utterance. */
export function asUttError(err: unknown, utt: string, file?: string): UttError {
  if (err instanceof UttError) return err
  if (err instanceof KtpError) return new UttError(err.code, utt, err.message, file)
  const e = err as { code?: unknown; message?: unknown }
  const code = typeof e?.code === 'string' ? e.code : 'error'
  const message = typeof e?.message === 'string' ? e.message : String(err)
  return new UttError(code, utt, message, file)
}
