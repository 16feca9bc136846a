import { KtpError } from '../../schemas/errors.js'
import { cCompare, fmtSeconds } from './kaldi-tables.js'

/**
 * CTM time-marked labels (NIST, as Kaldi writes them): `utt channel start dur label [conf]`,
 * seconds. ktp uses it for phone/word alignments (TIMIT .phn → phones.ctm) and reads it back to
 * make frame labels.
 */
export interface CtmSegment {
  channel: string
  start: number
  dur: number
  label: string
  conf?: number
}

/** Parse a CTM; segments of each utterance sorted by start time. Errors name file and line. */
export function parseCtm(text: string, source: string): Map<string, CtmSegment[]> {
  const out = new Map<string, CtmSegment[]>()
  const lines = text.split('\n')
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n].trim()
    if (line === '' || line.startsWith(';;')) continue
    const t = line.split(/\s+/)
    if (t.length !== 5 && t.length !== 6) {
      throw new KtpError(
        'bad-ctm',
        `${source}:${n + 1}: expected 'utt channel start dur label [conf]', got ${t.length} fields: '${line}'`,
      )
    }
    const [utt, channel, a, b, label] = t
    const start = Number(a)
    const dur = Number(b)
    if (!Number.isFinite(start) || start < 0 || !Number.isFinite(dur) || dur < 0) {
      throw new KtpError(
        'bad-ctm',
        `${source}:${n + 1}: utterance '${utt}': expected start ≥ 0 and dur ≥ 0 in seconds, got '${a}' '${b}'`,
      )
    }
    const seg: CtmSegment = { channel, start, dur, label }
    if (t.length === 6) seg.conf = Number(t[5])
    if (!out.has(utt)) out.set(utt, [])
    out.get(utt)!.push(seg)
  }
  for (const segs of out.values()) segs.sort((x, y) => x.start - y.start)
  return out
}

/** Format a CTM, utterances in C order, segments by start time. */
export function formatCtm(ctm: Map<string, CtmSegment[]>): string {
  const parts: string[] = []
  for (const utt of [...ctm.keys()].sort(cCompare)) {
    for (const s of [...ctm.get(utt)!].sort((x, y) => x.start - y.start)) {
      parts.push(
        `${utt} ${s.channel} ${fmtSeconds(s.start)} ${fmtSeconds(s.dur)} ${s.label}${s.conf === undefined ? '' : ` ${s.conf}`}\n`,
      )
    }
  }
  return parts.join('')
}
