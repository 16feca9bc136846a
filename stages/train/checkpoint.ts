import { existsSync, readFileSync } from 'node:fs'
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
