import { KtpError } from '../../schemas/errors.js'
import { TABLE_LINE, type TableLine, TextTable, cCompare } from './text-table.js'

export { cCompare, type TableLine, TextTable } from './text-table.js'

/**
 * The line-level grammar shared by every Kaldi data-dir table: `key rest-of-line`, keys without
 * whitespace, one key per line, files sorted in C (byte) order (`LC_ALL=C sort`). Kaldi tools
 * fail, or silently skip entries, when a table is unsorted, so ktp writes byte order and checks it.
 */

export function sortedKeys<T>(m: ReadonlyMap<string, T>): string[] {
  return m instanceof TextTable ? m.sortedKeys() : [...m.keys()].sort(cCompare)
}

/** `m`'s entries in C order of their keys: a TextTable's made one at a time (see TextTable.sortedEntries). */
export function sortedEntries<T>(m: ReadonlyMap<string, T>): Iterable<[string, T]> {
  if (m instanceof TextTable) return m.sortedEntries() as Iterable<[string, T]>
  return sortedKeys(m).map((k): [string, T] => [k, m.get(k)!])
}

/** `m`'s entries in JS sort() order of their keys (UTF-16 units), one at a time where C order is the same. */
export function* utf16SortedEntries<T>(m: ReadonlyMap<string, T>): Iterable<[string, T]> {
  if (m instanceof TextTable && m.utf16Ordered) yield* m.sortedEntries() as Iterable<[string, T]>
  else for (const k of [...m.keys()].sort()) yield [k, m.get(k)!]
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

/**
 * Parse `key rest` lines (TextTable reads a data dir's big tables the same way, but compactly).
 * Duplicate keys are an error naming both lines; blank lines are skipped
 * (Kaldi would choke on them, but they are harmless and common at the end of hand-made files).
 */
export function parseTable(text: string, source: string): TableLine[] {
  const out: TableLine[] = []
  const seen = new Map<string, number>()
  const lines = text.split('\n')
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n].replace(/\r$/, '')
    if (raw.trim() === '') continue
    const m = TABLE_LINE.exec(raw)!
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
