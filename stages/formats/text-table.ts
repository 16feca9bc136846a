import { KtpError } from '../../schemas/errors.js'

/**
 * C-locale (byte-wise UTF-8) order, as `LC_ALL=C sort`: JS `<` compares UTF-16 units, which differs
 * above U+D7FF. Below U+D800 UTF-16 units and UTF-8 bytes order alike, so the common case compares
 * units in place: encoding both strings on every call made sorting a 48,000-utterance data dir
 * allocate millions of Buffers (garbage that grew the heap of `ktp features` with its input).
 */
export function cCompare(a: string, b: string): number {
  return cCompareAt(a, 0, a.length, b, 0, b.length)
}

/** cCompare of a[as, ae) and b[bs, be), without slicing them (see TextTable). */
function cCompareAt(a: string, as: number, ae: number, b: string, bs: number, be: number): number {
  const n = Math.min(ae - as, be - bs)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(as + i)
    const y = b.charCodeAt(bs + i)
    if (x === y) continue
    if (x < 0xd800 && y < 0xd800) return x < y ? -1 : 1
    return utf8Compare(a.slice(as, ae), b.slice(bs, be))
  }
  if (ae - as === be - bs) return 0
  // a surrogate at the end of the common part may encode differently in each string
  const last = n > 0 ? a.charCodeAt(as + n - 1) : 0
  if (last >= 0xd800 && last < 0xe000) return utf8Compare(a.slice(as, ae), b.slice(bs, be))
  return ae - as < be - bs ? -1 : 1
}

/** The byte order itself (any string, lone surrogates as Buffer encodes them). */
function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
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

// `s`: a stray \r or U+2028 inside a line is part of the value, not the end of the match;
// `d`: the offsets of key and rest, which are all a TextTable keeps of a line
const LINE = /^\s*(\S+)\s*(.*?)\s*$/ds
/** Int32s per row: key start and end, rest start and end (offsets into the text), line number. */
const ROW = 5

/**
 * A `key rest` table (wav.scp, utt2spk, text) as a read-only Map, held as the file's text plus
 * five offsets per line, its rows ordered by key in a typed array. A Map of the same lines held a
 * key string, a value string and a hash entry per line, ~300 bytes per utterance of a data dir
 * for wav.scp and utt2spk, which made `ktp features`' peak grow with the number of utterances;
 * this holds the text (which the Map's sliced strings kept alive anyway) and 24 bytes.
 *
 * Parsing follows Kaldi's line grammar (see parseTable): blank lines skipped, duplicate keys an
 * error naming both lines. Iteration is in file order, as a Map filled line by line; `get` and
 * `has` search the key order.
 */
export class TextTable implements ReadonlyMap<string, string> {
  readonly size: number
  private readonly text: string
  private readonly at: Int32Array
  /**
   * Row indices by key in C order, a repeated key's rows in file order. (C order tells apart any
   * two strings decoded from a file: only lone surrogates, which UTF-8 decoding never yields,
   * encode alike.)
   */
  private readonly order: Int32Array

  private constructor(text: string, at: Int32Array, size: number) {
    this.text = text
    this.at = at
    this.size = size
    const order = new Int32Array(size)
    let sorted = true
    for (let r = 0; r < size; r++) {
      order[r] = r
      if (r > 0 && sorted && this.compareRows(r - 1, r) > 0) sorted = false
    }
    // (the usual table is sorted already: Kaldi wants it so)
    this.order = sorted ? order : order.sort((a, b) => this.compareRows(a, b))
  }

  /** Parse `text` (the file `source`, for messages). Throws on the first repeated key. */
  static parse(text: string, source: string): TextTable {
    let lines = 1
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lines++
    const at = new Int32Array(lines * ROW)
    let size = 0
    for (let n = 0, start = 0; start <= text.length; n++) {
      let end = text.indexOf('\n', start)
      if (end < 0) end = text.length
      const next = end + 1
      if (end > start && text.charCodeAt(end - 1) === 13) end--
      const raw = text.slice(start, end)
      if (raw.trim() !== '') {
        const m = LINE.exec(raw)!
        const [k, r] = [m.indices![1], m.indices![2]]
        at.set([start + k[0], start + k[1], start + r[0], start + r[1], n + 1], size * ROW)
        size++
      }
      start = next
    }
    const table = new TextTable(text, at.slice(0, size * ROW), size)
    table.checkUnique(source)
    return table
  }

  /** The error parseTable gave for the first line (in file order) whose key an earlier line has. */
  private checkUnique(source: string): void {
    let repeat = -1
    let first = -1
    for (let i = 1; i < this.size; i++) {
      const [a, b] = [this.order[i - 1], this.order[i]]
      // rows of one key are adjacent, in file order: the group's second row is its first repeat
      if (this.keyAt(a) !== this.keyAt(b)) continue
      if (i >= 2 && this.keyAt(this.order[i - 2]) === this.keyAt(a)) continue
      if (repeat < 0 || b < repeat) [repeat, first] = [b, a]
    }
    if (repeat >= 0)
      throw new KtpError(
        'duplicate-id',
        `${source}:${this.lineAt(repeat)}: duplicate id '${this.keyAt(repeat)}' (first on line ${this.lineAt(first)})`,
      )
  }

  private compareRows(a: number, b: number): number {
    const [t, x] = [this.text, this.at]
    return cCompareAt(t, x[a * ROW], x[a * ROW + 1], t, x[b * ROW], x[b * ROW + 1]) || a - b
  }

  private keyAt(r: number): string {
    return this.text.slice(this.at[r * ROW], this.at[r * ROW + 1])
  }

  private restAt(r: number): string {
    return this.text.slice(this.at[r * ROW + 2], this.at[r * ROW + 3])
  }

  private lineAt(r: number): number {
    return this.at[r * ROW + 4]
  }

  /** The row of `key`, or -1. */
  private find(key: string): number {
    const [t, x] = [this.text, this.at]
    let lo = 0
    let hi = this.size
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const r = this.order[mid]
      const c = cCompareAt(t, x[r * ROW], x[r * ROW + 1], key, 0, key.length)
      if (c === 0) return this.keyAt(r) === key ? r : -1
      if (c < 0) lo = mid + 1
      else hi = mid
    }
    return -1
  }

  get(key: string): string | undefined {
    const r = this.find(key)
    return r < 0 ? undefined : this.restAt(r)
  }

  has(key: string): boolean {
    return this.find(key) >= 0
  }

  /** The keys in C order (what sortedKeys gives for a Map), without sorting them again. */
  sortedKeys(): string[] {
    return Array.from(this.order, (r) => this.keyAt(r))
  }

  /** The lines in file order, as parseTable returns them. */
  *rows(): IterableIterator<TableLine> {
    for (let r = 0; r < this.size; r++) {
      const rest = this.restAt(r)
      yield { key: this.keyAt(r), rest, fields: rest === '' ? [] : rest.split(/\s+/), line: this.lineAt(r) }
    }
  }

  *entries(): IterableIterator<[string, string]> {
    for (let r = 0; r < this.size; r++) yield [this.keyAt(r), this.restAt(r)]
  }

  *keys(): IterableIterator<string> {
    for (let r = 0; r < this.size; r++) yield this.keyAt(r)
  }

  *values(): IterableIterator<string> {
    for (let r = 0; r < this.size; r++) yield this.restAt(r)
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries()
  }

  forEach(f: (value: string, key: string, map: ReadonlyMap<string, string>) => void, self?: unknown): void {
    for (const [k, v] of this.entries()) f.call(self, v, k, this)
  }
}
