import { closeSync, fstatSync, openSync, readSync } from 'node:fs'

/**
 * Just enough of a RIFF/WAVE or NIST SPHERE header to learn the sample rate and length of a file
 * without decoding it: `ktp prepare` needs the rate to turn TIMIT's sample-indexed .phn files into
 * seconds, and the length for utt2dur. Recognised by magic bytes, not extension (TIMIT `.wav`
 * files are SPHERE). Full decoding is stages/audio/decode.ts's job; this returns null for
 * anything it does not understand so the caller can say so.
 */
export interface AudioHeader {
  format: 'riff' | 'nist'
  sampleRate: number
  channels: number
  /** Sample frames (per channel). */
  frames: number
}

const HEAD = 1 << 16

export function readAudioHeader(path: string): AudioHeader | null {
  const fd = openSync(path, 'r')
  try {
    const size = fstatSync(fd).size
    const b = Buffer.alloc(Math.min(HEAD, size))
    readSync(fd, b, 0, b.length, 0)
    if (b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WAVE') return riff(b, size)
    if (b.toString('latin1', 0, 7) === 'NIST_1A') return nist(b)
    return null
  } finally {
    closeSync(fd)
  }
}

function riff(b: Buffer, fileSize: number): AudioHeader | null {
  let pos = 12
  let rate = 0
  let channels = 0
  let blockAlign = 0
  while (pos + 8 <= b.length) {
    const id = b.toString('latin1', pos, pos + 4)
    const size = b.readUInt32LE(pos + 4)
    if (id === 'fmt ' && pos + 24 <= b.length) {
      channels = b.readUInt16LE(pos + 10)
      rate = b.readUInt32LE(pos + 12)
      blockAlign = b.readUInt16LE(pos + 20)
    } else if (id === 'data') {
      if (!rate || !blockAlign) return null
      // Streamed writers leave size 0 or 0xffffffff: trust the file length then.
      const avail = fileSize - (pos + 8)
      const bytes = size === 0 || size > avail ? avail : size
      return { format: 'riff', sampleRate: rate, channels, frames: Math.floor(bytes / blockAlign) }
    }
    pos += 8 + size + (size & 1)
  }
  return null
}

function nist(b: Buffer): AudioHeader | null {
  const headerSize = Number(b.toString('latin1', 8, 15).trim())
  if (!Number.isInteger(headerSize) || headerSize > b.length) return null
  const fields = new Map<string, string>()
  for (const line of b.toString('latin1', 16, headerSize).split('\n')) {
    const m = /^(\S+)\s+-(?:i|r|s\d+)\s+(.*)$/.exec(line.trim())
    if (m) fields.set(m[1], m[2].trim())
  }
  const rate = Number(fields.get('sample_rate'))
  const frames = Number(fields.get('sample_count'))
  const channels = Number(fields.get('channel_count') ?? 1)
  if (!(rate > 0) || !Number.isFinite(frames)) return null
  return { format: 'nist', sampleRate: rate, channels, frames }
}
