import { KtpError } from '../../schemas/errors.js'

/**
 * The line-level grammar shared by every Kaldi data-dir table: `key rest-of-line`, keys without
 * whitespace, one key per line, files sorted in C (byte) order (`LC_ALL=C sort`). Kaldi tools
 * fail, or silently skip entries, when a table is unsorted, so ktp writes byte order and checks it.
 */

/** C-locale (byte-wise UTF-8) order, as `LC_ALL=C sort`: JS `<` compares UTF-16 units, which differs above U+D7FF. */
export function cCompare(a: string, b: string): number {
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
    .map((k) => (m.get(k) === '' ? `${k}\n` : `${k} ${m.get(k)}\n`))
    .join('')
}

/** Numbers for text tables: enough digits for a sample at 16 kHz (62.5 µs), no float noise. */
export function fmtSeconds(x: number): string {
  return String(Number(x.toFixed(7)))
}
