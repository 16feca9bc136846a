import { KtpError } from '../../schemas/errors.js'

/**
 * The line-level grammar shared by every Kaldi data-dir table: `key rest-of-line`, keys without
 * whitespace, one key per line, files sorted in C (byte) order (`LC_ALL=C sort`). Kaldi tools
 * fail, or silently skip entries, when a table is unsorted, so ktp writes byte order and checks it.
 */

/**
 * C-locale (byte-wise UTF-8) order, as `LC_ALL=C sort`: JS `<` compares UTF-16 units, which differs
 * above U+D7FF. Below U+D800 UTF-16 units and UTF-8 bytes order alike, so the common case compares
 * units in place: encoding both strings on every call made sorting a 48,000-utterance data dir
 * allocate millions of Buffers (garbage that grew the heap of `ktp features` with its input).
 */
export function cCompare(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x === y) continue
    if (x < 0xd800 && y < 0xd800) return x < y ? -1 : 1
    return utf8Compare(a, b)
  }
  if (a.length === b.length) return 0
  // a surrogate at the end of the common part may encode differently in each string
  if (n > 0 && a.charCodeAt(n - 1) >= 0xd800 && a.charCodeAt(n - 1) < 0xe000) return utf8Compare(a, b)
  return a.length < b.length ? -1 : 1
}

/** The byte order itself (any string, lone surrogates as Buffer encodes them). */
function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

export function sortedKeys<T>(m: Map<string, T>): string[] {
  return [...m.keys()].sort(cCompare)
}

/** Valid table key: non-empty, no whitespace (Kaldi splits lines on whitespace). */
export function checkId(id: string, what: string, where: string): void {
  if (id.length === 0 || /\s/.test(id)) {
    throw new KtpError(
      'bad-id',
      `${where}: ${what} ${JSON.stringify(id)} is empty or contains whitespace; Kaldi ids may not`,
    )
  }
}

export interface TableLine {
  key: string
  /** The rest of the line after the key and its separating whitespace (trailing whitespace removed). */
  rest: string
  /** Whitespace-separated fields after the key. */
  fields: string[]
  /** 1-based line number, for messages. */
  line: number
}

/**
 * Parse `key rest` lines. Duplicate keys are an error naming both lines; blank lines are skipped
 * (Kaldi would choke on them, but they are harmless and common at the end of hand-made files).
 */
export function parseTable(text: string, source: string): TableLine[] {
  const out: TableLine[] = []
  const seen = new Map<string, number>()
  const lines = text.split('\n')
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n].replace(/\r$/, '')
    if (raw.trim() === '') continue
    // `s`: a stray \r or U+2028 inside a line is part of the value, not the end of the match
    const m = /^\s*(\S+)\s*(.*?)\s*$/s.exec(raw)!
    const key = m[1]
    const first = seen.get(key)
    if (first !== undefined) {
      throw new KtpError('duplicate-id', `${source}:${n + 1}: duplicate id '${key}' (first on line ${first})`)
    }
    seen.set(key, n + 1)
    const rest = m[2]
    out.push({ key, rest, fields: rest === '' ? [] : rest.split(/\s+/), line: n + 1 })
  }
  return out
}

/** Require exactly `n` fields after the key (`what` describes them for the message). */
export function expectFields(l: TableLine, n: number, source: string, what: string): string[] {
  if (l.fields.length !== n) {
    throw new KtpError(
      'bad-line',
      `${source}:${l.line}: expected '${what}', got ${n === 1 && l.fields.length > 1 ? 'an id with spaces or extra fields' : `${l.fields.length + 1} fields`}: '${l.key} ${l.rest}'`,
    )
  }
  return l.fields
}

/** Format `key value` lines in C order; values are written as given. */
export function formatTable(m: Map<string, string>): string {
  return sortedKeys(m)
    .map((k) => tableLine(k, m.get(k)!))
    .join('')
}

/** One line of a Kaldi table: the key, then the value unless it is empty. */
export function tableLine(key: string, value: string): string {
  return value === '' ? `${key}\n` : `${key} ${value}\n`
}

/** Numbers for text tables: enough digits for a sample at 16 kHz (62.5 µs), no float noise. */
export function fmtSeconds(x: number): string {
  return String(Number(x.toFixed(7)))
}
