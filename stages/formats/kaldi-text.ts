import { KtpError } from '../../schemas/errors.js'

/**
 * Kaldi's text archive forms, so that ktp output can feed Kaldi tools (`copy-feats ark,t:- …`)
 * and Kaldi alignments (`ali-to-pdf … ark,t:-`) can feed ktp:
 *   matrix:  `utt  [\n  v v v \n  v v v ]\n`
 *   vector:  `utt v v v\n`
 */
function fmt(v: number): string {
  // Kaldi writes floats with C++ stream defaults (6 significant digits); we keep 7 so a
  // float32 survives the round trip closely enough for diffs against Kaldi.
  if (Number.isInteger(v)) return String(v)
  return String(Number(v.toPrecision(7)))
}

export function matrixToKaldiText(utt: string, data: ArrayLike<number>, frames: number, width: number): string {
  const lines: string[] = [`${utt}  [`]
  for (let f = 0; f < frames; f++) {
    const row: string[] = []
    for (let j = 0; j < width; j++) row.push(fmt(data[f * width + j]))
    lines.push(`  ${row.join(' ')} ${f === frames - 1 ? ']' : ''}`.replace(/ $/, ' '))
  }
  if (frames === 0) return `${utt}  [ ]\n`
  return `${lines.join('\n')}\n`
}

export function vectorToKaldiText(utt: string, data: ArrayLike<number>): string {
  const parts = [utt]
  for (let i = 0; i < data.length; i++) parts.push(fmt(data[i]))
  return `${parts.join(' ')}\n`
}

export interface KaldiMatrix {
  utt: string
  frames: number
  width: number
  data: Float32Array
}

/**
 * Parse a Kaldi text archive of matrices (one row per line, as Kaldi writes them). Errors name
 * the line, since a text archive has no other address; `source` names the file.
 */
export function parseKaldiMatrices(text: string, source: string): KaldiMatrix[] {
  const out: KaldiMatrix[] = []
  let cur: { utt: string; width: number; frames: number; values: number[] } | null = null
  const lines = text.split('\n')
  const bad = (n: number, what: string) =>
    new KtpError('bad-kaldi-text', `${source}:${n + 1}: ${cur ? `utterance '${cur.utt}': ` : ''}${what}`)
  for (let n = 0; n < lines.length; n++) {
    let toks = lines[n].trim().split(/\s+/).filter(Boolean)
    if (toks.length === 0) continue
    if (!cur) {
      if (toks[1] !== '[') throw bad(n, `expected 'UTT [' to open a matrix, got '${toks.slice(0, 2).join(' ')}'`)
      cur = { utt: toks[0], width: -1, frames: 0, values: [] }
      toks = toks.slice(2)
    }
    const closes = toks[toks.length - 1] === ']'
    if (closes) toks = toks.slice(0, -1)
    if (toks.length > 0) {
      if (cur.width >= 0 && toks.length !== cur.width)
        throw bad(n, `row has ${toks.length} values, earlier rows ${cur.width}`)
      cur.width = toks.length
      cur.frames++
      for (const t of toks) {
        const v = /^[-+]?inf$/i.test(t)
          ? t.startsWith('-')
            ? -Infinity
            : Infinity
          : /^nan$/i.test(t)
            ? NaN
            : Number(t)
        if (Number.isNaN(v) && !/^nan$/i.test(t)) throw bad(n, `'${t}' is not a number`)
        cur.values.push(v)
      }
    }
    if (closes) {
      out.push({ utt: cur.utt, frames: cur.frames, width: Math.max(cur.width, 0), data: Float32Array.from(cur.values) })
      cur = null
    }
  }
  if (cur)
    throw new KtpError('bad-kaldi-text', `${source}: utterance '${cur.utt}': missing ']' before the end of the file`)
  return out
}

/** Parse Kaldi integer-vector text (`utt id id id …` per line), as `ali-to-pdf … ark,t:-` writes. */
export function parseKaldiIntVectors(text: string, source: string): { utt: string; values: Int32Array }[] {
  const out: { utt: string; values: Int32Array }[] = []
  const lines = text.split('\n')
  for (let n = 0; n < lines.length; n++) {
    const toks = lines[n].trim().split(/\s+/).filter(Boolean)
    if (toks.length === 0) continue
    const utt = toks[0]
    const vals = new Int32Array(toks.length - 1)
    for (let j = 1; j < toks.length; j++) {
      const v = Number(toks[j])
      if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) {
        throw new KtpError('bad-kaldi-text', `${source}:${n + 1}: utterance '${utt}': '${toks[j]}' is not an integer`)
      }
      vals[j - 1] = v
    }
    out.push({ utt, values: vals })
  }
  return out
}
