import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs'
import { KtpError } from '../../schemas/errors.js'
import { writeFileAtomic } from '../../pipeline/io/atomic-file.js'

/**
 * Training checkpoints: 'KTPCKPT1' | u32 header length | header JSON | float32 arrays, in header
 * order. One file, written with temp + fsync + rename, so a kill -9 leaves the previous checkpoint
 * or the new one, never half of one. The header holds everything that is not an array: position in
 * the data, schedule state, optimizer step count, config fingerprint.
 */
const MAGIC = 'KTPCKPT1'

export interface Checkpoint<H = Record<string, unknown>> {
  header: H
  arrays: Record<string, Float32Array>
}

export function saveCheckpoint(path: string, ck: Checkpoint): void {
  const names = Object.keys(ck.arrays)
  const header = Buffer.from(
    JSON.stringify({ header: ck.header, arrays: names.map((n) => [n, ck.arrays[n].length]) }),
    'utf8',
  )
  const len = Buffer.alloc(4)
  len.writeUInt32LE(header.length)
  const parts: Buffer[] = [Buffer.from(MAGIC, 'ascii'), len, header]
  for (const n of names) {
    const a = ck.arrays[n]
    parts.push(Buffer.from(a.buffer, a.byteOffset, a.byteLength))
  }
  writeFileAtomic(path, Buffer.concat(parts))
}

export function loadCheckpoint<H>(path: string): Checkpoint<H> | null {
  if (!existsSync(path)) return null
  const b = readFileSync(path)
  if (b.length < 12 || b.toString('ascii', 0, 8) !== MAGIC) {
    throw new KtpError('bad-checkpoint', `${path}: not a ktp checkpoint (bad magic); delete it to start afresh`)
  }
  const hlen = b.readUInt32LE(8)
  if (12 + hlen > b.length)
    throw new KtpError('bad-checkpoint', `${path}: truncated inside its header; delete it to start afresh`)
  let meta: { header: H; arrays: [string, number][] }
  try {
    meta = JSON.parse(b.toString('utf8', 12, 12 + hlen))
  } catch (err) {
    throw new KtpError(
      'bad-checkpoint',
      `${path}: unreadable header (${(err as Error).message}); delete it to start afresh`,
    )
  }
  if (
    !Array.isArray(meta?.arrays) ||
    !meta.arrays.every((a) => Array.isArray(a) && typeof a[0] === 'string' && Number.isSafeInteger(a[1]) && a[1] >= 0)
  ) {
    throw new KtpError('bad-checkpoint', `${path}: header lacks a valid array list; delete it to start afresh`)
  }
  const expected = 12 + hlen + meta.arrays.reduce((a, [, count]) => a + count * 4, 0)
  if (expected !== b.length)
    throw new KtpError(
      'bad-checkpoint',
      `${path}: ${b.length} bytes, but its header describes ${expected} (${b.length < expected ? 'truncated' : 'trailing bytes'}); delete it to start afresh`,
    )
  const arrays: Record<string, Float32Array> = {}
  let off = 12 + hlen
  for (const [n, count] of meta.arrays) {
    if (off + count * 4 > b.length)
      throw new KtpError('bad-checkpoint', `${path}: truncated at array ${n}; delete it to start afresh`)
    const copy = new Uint8Array(count * 4)
    copy.set(b.subarray(off, off + count * 4))
    arrays[n] = new Float32Array(copy.buffer)
    off += count * 4
  }
  return { header: meta.header, arrays }
}

/**
 * A checkpoint's header and whether the file is whole (its size is what the header describes),
 * without reading its arrays: what a rerun needs to say what an output directory holds.
 */
export function peekCheckpoint<H>(path: string): { header: H | null; whole: boolean; bytes: number; expected: number } {
  const fd = openSync(path, 'r')
  try {
    const bytes = fstatSync(fd).size
    const head = Buffer.alloc(12)
    if (readSync(fd, head, 0, 12, 0) < 12 || head.toString('ascii', 0, 8) !== MAGIC)
      return { header: null, whole: false, bytes, expected: NaN }
    const hlen = head.readUInt32LE(8)
    if (12 + hlen > bytes) return { header: null, whole: false, bytes, expected: NaN }
    const hb = Buffer.alloc(hlen)
    readSync(fd, hb, 0, hlen, 12)
    try {
      const meta = JSON.parse(hb.toString('utf8')) as { header: H; arrays: [string, number][] }
      const expected = 12 + hlen + meta.arrays.reduce((a, [, count]) => a + count * 4, 0)
      return { header: meta.header, whole: expected === bytes, bytes, expected }
    } catch {
      return { header: null, whole: false, bytes, expected: NaN }
    }
  } finally {
    closeSync(fd)
  }
}
