import { KtpError } from '../../schemas/errors.js'

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

/** Byte order of a[as, ae) and b[bs, be): C order of the UTF-8 text they hold. */
function compareBytes(a: Uint8Array, as: number, ae: number, b: Uint8Array, bs: number, be: number): number {
  const n = Math.min(ae - as, be - bs)
  for (let i = 0; i < n; i++) {
    const d = a[as + i] - b[bs + i]
    if (d !== 0) return d
  }
  return ae - as - (be - bs)
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
 * One line of a Kaldi table: key, then the rest. `s`: a stray \r or U+2028 inside a line is part
 * of the value, not the end of the match; `d`: where key and rest are, all a TextTable keeps.
 */
export const TABLE_LINE = /^\s*(\S+)\s*(.*?)\s*$/ds
/** Int32s per row: byte offsets of the key's start and end and of the rest's, then the line number. */
const ROW = 5
const NL = 0x0a
const CR = 0x0d

/**
 * A `key rest` table (wav.scp, utt2spk, text) as a read-only Map, held as the file's bytes plus
 * five offsets per line and its rows in key order, all outside V8's heap. A Map of the lines held
 * a key string, a value string and a hash entry per line (~300 bytes an utterance of a data dir
 * for wav.scp and utt2spk), and even the file as one string, kept on the heap, was promoted out
 * of V8's young generation as it was read: at 48,000 utterances that alone made the young
 * generation grow to its maximum, ~30 MB of the peak of `ktp features` for its whole run.
 *
 * Lines are those of parseTable (the same grammar, duplicate keys the same error); keys and values
 * are decoded as a file read as UTF-8 decodes (a line that is not valid UTF-8 keeps its decoded
 * key and rest as strings, since offsets cannot say where a U+FFFD came from). Iteration is in
 * file order, as a Map filled line by line; `get` and `has` search the key order.
 */
export class TextTable implements ReadonlyMap<string, string> {
  readonly size: number
  private readonly bytes: Buffer
  private readonly at: Int32Array
  /** Row indices by key (C order, which is the bytes' order), a repeated key's rows in file order. */
  private readonly order: Int32Array
  /** The rows of lines that are not valid UTF-8: key and rest as decoded, the key's UTF-8. */
  private readonly odd: Map<number, { key: string; rest: string; keyBytes: Buffer }>

  private constructor(
    bytes: Buffer,
    at: Int32Array,
    size: number,
    odd: Map<number, { key: string; rest: string; keyBytes: Buffer }>,
  ) {
    this.bytes = bytes
    this.at = at
    this.size = size
    this.odd = odd
    const order = new Int32Array(size)
    let sorted = true
    for (let r = 0; r < size; r++) {
      order[r] = r
      if (r > 0 && sorted && this.compareRows(r - 1, r) > 0) sorted = false
    }
    // (the usual table is sorted already: Kaldi wants it so)
    this.order = sorted ? order : order.sort((a, b) => this.compareRows(a, b))
  }

  /** Parse a table file's bytes (`source`, for messages). Throws on the first repeated key. */
  static parse(data: Uint8Array, source: string): TextTable {
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    let lines = 1
    for (let i = bytes.indexOf(NL); i >= 0; i = bytes.indexOf(NL, i + 1)) lines++
    const at = new Int32Array(lines * ROW)
    const odd = new Map<number, { key: string; rest: string; keyBytes: Buffer }>()
    let size = 0
    for (let n = 0, start = 0; start <= bytes.length; n++) {
      let end = bytes.indexOf(NL, start)
      if (end < 0) end = bytes.length
      const next = end + 1
      if (end > start && bytes[end - 1] === CR) end--
      // ('\n' ends any UTF-8 sequence, so a line decodes as it does within the whole file)
      const raw = bytes.toString('utf8', start, end)
      if (raw.trim() !== '') {
        const m = TABLE_LINE.exec(raw)!
        const [k, r] = [m.indices![1], m.indices![2]]
        let offsets = [k[0], k[1], r[0], r[1]]
        // ASCII when no wider character and no U+FFFD (an invalid byte decodes to one unit too)
        if (raw.length !== end - start || raw.includes('\ufffd')) {
          // not ASCII: UTF-16 offsets to byte offsets, if the bytes are the text's own
          const line = bytes.subarray(start, end)
          if (Buffer.from(raw, 'utf8').equals(line)) offsets = offsets.map((o) => Buffer.byteLength(raw.slice(0, o)))
          else odd.set(size, { key: m[1], rest: m[2], keyBytes: Buffer.from(m[1], 'utf8') })
        }
        at.set([start + offsets[0], start + offsets[1], start + offsets[2], start + offsets[3], n + 1], size * ROW)
        size++
      }
      start = next
    }
    const table = new TextTable(bytes, at.slice(0, size * ROW), size, odd)
    table.checkUnique(source)
    return table
  }

  /** The error parseTable gives: at the first line (in file order) whose key an earlier line has. */
  private checkUnique(source: string): void {
    let repeat = -1
    let first = -1
    for (let i = 1; i < this.size; i++) {
      const [a, b] = [this.order[i - 1], this.order[i]]
      // rows of one key are adjacent, in file order: a group's second row is its first repeat
      if (!this.sameKey(a, b)) continue
      if (i >= 2 && this.sameKey(this.order[i - 2], a)) continue
      if (repeat < 0 || b < repeat) [repeat, first] = [b, a]
    }
    if (repeat >= 0)
      throw new KtpError(
        'duplicate-id',
        `${source}:${this.lineAt(repeat)}: duplicate id '${this.keyAt(repeat)}' (first on line ${this.lineAt(first)})`,
      )
  }

  /** Key order, then file order. */
  private compareRows(a: number, b: number): number {
    const [x, ax, ay] = this.keyBytes(a)
    const [y, bx, by] = this.keyBytes(b)
    return compareBytes(x, ax, ay, y, bx, by) || a - b
  }

  private sameKey(a: number, b: number): boolean {
    const [x, ax, ay] = this.keyBytes(a)
    const [y, bx, by] = this.keyBytes(b)
    return compareBytes(x, ax, ay, y, bx, by) === 0
  }

  private keyBytes(r: number): [Uint8Array, number, number] {
    const o = this.odd.size ? this.odd.get(r) : undefined
    return o ? [o.keyBytes, 0, o.keyBytes.length] : [this.bytes, this.at[r * ROW], this.at[r * ROW + 1]]
  }

  private keyAt(r: number): string {
    const o = this.odd.size ? this.odd.get(r) : undefined
    return o ? o.key : this.bytes.toString('utf8', this.at[r * ROW], this.at[r * ROW + 1])
  }

  private restAt(r: number): string {
    const o = this.odd.size ? this.odd.get(r) : undefined
    return o ? o.rest : this.bytes.toString('utf8', this.at[r * ROW + 2], this.at[r * ROW + 3])
  }

  private lineAt(r: number): number {
    return this.at[r * ROW + 4]
  }

  /** The row of `key`, or -1. */
  private find(key: string): number {
    const want = Buffer.from(key, 'utf8')
    let lo = 0
    let hi = this.size
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const r = this.order[mid]
      const [x, s, e] = this.keyBytes(r)
      const c = compareBytes(x, s, e, want, 0, want.length)
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

  /**
   * The entries in key (C) order, each made as it is taken: arrays of 48,000 keys, held while a
   * data dir was checked and fingerprinted, outlived V8's young generation (see above).
   */
  *sortedEntries(): IterableIterator<[string, string]> {
    for (const r of this.order) yield [this.keyAt(r), this.restAt(r)]
  }

  /**
   * Whether C order is surely also JS (UTF-16 unit) order here, as it is when no key has a code
   * point from U+D800 on: checked as no byte of the table being a UTF-8 lead byte from 0xED on
   * (the code points from U+D000 on).
   */
  get utf16Ordered(): boolean {
    this.utf16 ??= this.odd.size === 0 && !this.bytes.some((b) => b >= 0xed)
    return this.utf16
  }
  private utf16: boolean | undefined;

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
