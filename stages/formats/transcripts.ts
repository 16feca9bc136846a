import { readFileSync } from 'node:fs'
import { KtpError } from '../../schemas/errors.js'
import type { Segment } from '../hmm/index.js'

/**
 * The text side inputs and outputs of align/decode: Kaldi `text` transcripts, CTM word
 * segments (seconds), sclite `trn` lines. Malformed side files are fatal (exit 2) with
 * `file:line`, since every utterance would otherwise fail the same way.
 */

export function readText(path: string, option: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new KtpError('no-file', `${option} ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`)
  }
}

/** Kaldi `text`: `utt word word ...` per line (an utterance with no words is allowed). */
export function parseKaldiText(text: string, source: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  text.split('\n').forEach((raw, i) => {
    const f = raw.trim().split(/\s+/).filter(Boolean)
    if (f.length === 0) return
    if (out.has(f[0]!)) throw new KtpError('bad-text', `${source}:${i + 1}: utterance '${f[0]}' appears twice`)
    out.set(f[0]!, f.slice(1))
  })
  return out
}

/**
 * Training sentences for the LM: Kaldi `text` (utterance id first) or sclite `trn` (id last, in
 * parentheses) — a file is `trn` when every non-empty line ends in `(id)`.
 */
export function parseSentences(text: string): { words: string[]; line: number }[] {
  const lines = text
    .split('\n')
    .map((l, i) => ({ l: l.trim(), line: i + 1 }))
    .filter((x) => x.l !== '')
  const trn = lines.length > 0 && lines.every((x) => /\(\S*\)$/.test(x.l))
  return lines.map(({ l, line }) => {
    const f = l.split(/\s+/)
    return { words: trn ? f.slice(0, -1) : f.slice(1), line }
  })
}

export interface CtmEntry {
  word: string
  /** seconds */
  start: number
  duration: number
  line: number
}

/** CTM: `utt channel start duration word [confidence]` per line; `;;` comments. */
export function parseCtm(text: string, source: string): Map<string, CtmEntry[]> {
  const out = new Map<string, CtmEntry[]>()
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith(';;')) return
    const f = line.split(/\s+/)
    const start = Number(f[2])
    const duration = Number(f[3])
    if (f.length < 5 || !Number.isFinite(start) || !Number.isFinite(duration) || start < 0 || duration <= 0) {
      throw new KtpError(
        'bad-ctm',
        `${source}:${i + 1}: expected "utt channel start duration word" with start ≥ 0 and duration > 0 (seconds), got ${JSON.stringify(line)}`,
      )
    }
    let list = out.get(f[0]!)
    if (!list) {
      list = []
      out.set(f[0]!, list)
    }
    list.push({ word: f[4]!, start, duration, line: i + 1 })
  })
  for (const list of out.values()) list.sort((a, b) => a.start - b.start)
  return out
}

/**
 * Seconds → frame index for frame shift `shiftMs`: frame i starts at i·shift, so a boundary at t
 * seconds falls at round(t / shift), the frame boundary nearest to it.
 */
export function secondsToFrame(t: number, shiftMs: number): number {
  return Math.round((t * 1000) / shiftMs)
}

function fmtTime(frames: number, shiftMs: number): string {
  const s = (frames * shiftMs) / 1000
  // a 10 ms shift gives exact hundredths (Kaldi's %.2f); finer shifts keep milliseconds
  return Number.isInteger(shiftMs / 10) ? s.toFixed(2) : s.toFixed(3)
}

/** CTM lines of an utterance's non-silence segments (channel 1, as Kaldi writes them). */
export function formatCtm(utt: string, segments: readonly Segment[], shiftMs: number): string {
  return segments
    .filter((s) => !s.silence)
    .map((s) => `${utt} 1 ${fmtTime(s.start, shiftMs)} ${fmtTime(s.end - s.start, shiftMs)} ${s.label}\n`)
    .join('')
}

/** One sclite `trn` line. */
export function formatTrn(utt: string, words: readonly string[]): string {
  return `${words.length > 0 ? `${words.join(' ')} ` : ''}(${utt})\n`
}
