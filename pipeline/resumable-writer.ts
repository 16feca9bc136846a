import {
  closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync,
  ftruncateSync, fstatSync, writeFileSync, writeSync,
} from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { crc32 } from 'node:zlib'
import { RecordBatch, RecordBatchReader, Schema } from 'apache-arrow'
import { KtpError } from '../schemas/errors.js'
import { uttId } from '../schemas/utterance.js'
import { BatchEncoder } from './arrow-encoder.js'

/**
 * An Arrow file writer that survives `kill -9` at any instant (DESIGN.md §3).
 *
 * While running, each finished utterance is appended to a log in `OUT.partial/` as a unit
 *   'KTPU' | u32 header length | header JSON {utt, ord} | u32 payload length | payload | u32 crc32
 * where the payload is a self-contained Arrow IPC stream holding that one utterance. A unit
 * counts as finished only when it is whole and its CRC matches, so a torn tail is ignored and cut
 * off on restart: no utterance is lost or duplicated, none that finished is computed again.
 * `finish()` writes the real file (Arrow file format, utterances in input order `ord`) to a
 * temporary name, fsyncs it, renames it over OUT and only then removes the partial directory.
 * A restart after the rename but before the removal just merges again to the same bytes.
 */
const MAGIC = 0x5550544b // 'KTPU' little-endian
const SYNC_EVERY_MS = 1000

interface UnitRef {
  utt: string
  ord: number
  log: string
  offset: number
  length: number
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n >>> 0)
  return b
}

/** Scan one log; return its whole units and the byte length they cover. */
function scanLog(path: string): { units: UnitRef[]; validBytes: number } {
  const buf = readFileSync(path)
  const units: UnitRef[] = []
  let pos = 0
  while (pos + 8 <= buf.length) {
    if (buf.readUInt32LE(pos) !== MAGIC) break
    const hlen = buf.readUInt32LE(pos + 4)
    const hstart = pos + 8
    if (hstart + hlen + 4 > buf.length) break
    const plen = buf.readUInt32LE(hstart + hlen)
    const pstart = hstart + hlen + 4
    const end = pstart + plen + 4
    if (end > buf.length) break
    const crc = buf.readUInt32LE(pstart + plen)
    if (crc32(buf.subarray(hstart, pstart + plen)) !== crc) break
    let header: { utt: string; ord: number }
    try {
      header = JSON.parse(buf.toString('utf8', hstart, hstart + hlen))
    } catch {
      break
    }
    units.push({ utt: header.utt, ord: header.ord, log: path, offset: pstart, length: plen })
    pos = end
  }
  return { units, validBytes: pos }
}

export interface ResumableOptions {
  /** Fingerprint of what is being computed: a partial run with another fingerprint is discarded. */
  fingerprint: string
  /** Called with a line for the user (stderr) when earlier work is resumed or discarded. */
  log?: (msg: string) => void
}

export class ResumableArrowWriter {
  readonly path: string
  readonly partial: string
  readonly schema: Schema
  /** Utterances finished by earlier runs: the caller skips them. */
  readonly done: Set<string>
  private readonly units: UnitRef[]
  private fd: number | null = null
  private logPath = ''
  private offset = 0
  private lastSync = Date.now()

  private constructor(path: string, schema: Schema, units: UnitRef[]) {
    this.path = path
    this.partial = `${path}.partial`
    this.schema = schema
    this.units = units
    this.done = new Set(units.map((u) => u.utt))
  }

  static open(path: string, schema: Schema, opts: ResumableOptions): ResumableArrowWriter {
    const partial = `${path}.partial`
    const metaPath = join(partial, 'meta.json')
    let units: UnitRef[] = []
    if (existsSync(partial)) {
      let meta: { fingerprint?: string } = {}
      try {
        meta = JSON.parse(readFileSync(metaPath, 'utf8'))
      } catch {
        /* a partial dir without readable meta is from a run killed at birth: discard */
      }
      if (meta.fingerprint !== opts.fingerprint) {
        opts.log?.(`${path}: discarding a partial run made with other options or inputs`)
        rmSync(partial, { recursive: true, force: true })
      } else {
        const seen = new Set<string>()
        for (const f of readdirSync(partial).filter((n) => n.endsWith('.log')).sort()) {
          const p = join(partial, f)
          const { units: us, validBytes } = scanLog(p)
          const fd = openSync(p, 'r+')
          try {
            if (fstatSync(fd).size > validBytes) ftruncateSync(fd, validBytes)
          } finally {
            closeSync(fd)
          }
          for (const u of us) if (!seen.has(u.utt)) (seen.add(u.utt), units.push(u))
        }
        if (units.length > 0) opts.log?.(`${path}: resuming, ${units.length} utterances already done`)
      }
    }
    if (!existsSync(partial)) {
      mkdirSync(dirname(path), { recursive: true })
      mkdirSync(partial, { recursive: true })
      writeFileSync(metaPath, JSON.stringify({ fingerprint: opts.fingerprint }))
      units = []
    }
    return new ResumableArrowWriter(path, schema, units)
  }

  private ensureLog(): number {
    if (this.fd !== null) return this.fd
    const existing = readdirSync(this.partial).filter((n) => n.endsWith('.log')).length
    this.logPath = join(this.partial, `${String(existing).padStart(5, '0')}.log`)
    this.fd = openSync(this.logPath, 'a')
    this.offset = 0
    return this.fd
  }

  /** Append one finished utterance (a one-row batch); `ord` is its position in the input. */
  write(batch: RecordBatch, ord: number): void {
    const utt = uttId(batch)
    if (this.done.has(utt)) throw new KtpError('duplicate-utt', `${this.path}: utterance '${utt}' written twice`)
    const enc = new BatchEncoder(this.schema, 'stream')
    const payload = Buffer.concat([...enc.encode(batch), ...enc.finish()])
    const header = Buffer.from(JSON.stringify({ utt, ord }), 'utf8')
    const crc = crc32(Buffer.concat([header, u32(payload.length), payload]).subarray(0))
    // crc covers header + payload-length + payload, which is what scanLog checks
    const unit = Buffer.concat([u32(MAGIC), u32(header.length), header, u32(payload.length), payload, u32(crc)])
    const fd = this.ensureLog()
    writeSync(fd, unit)
    const pstart = this.offset + 8 + header.length + 4
    this.units.push({ utt, ord, log: this.logPath, offset: pstart, length: payload.length })
    this.offset += unit.length
    this.done.add(utt)
    // kill -9 cannot lose what write() handed to the kernel; fsync bounds what a power cut can.
    if (Date.now() - this.lastSync > SYNC_EVERY_MS) {
      fsyncSync(fd)
      this.lastSync = Date.now()
    }
  }

  get count(): number {
    return this.units.length
  }

  /** Write OUT atomically from all finished units, in input order, and drop the partial dir. */
  async finish(): Promise<void> {
    if (this.fd !== null) {
      fsyncSync(this.fd)
      closeSync(this.fd)
      this.fd = null
    }
    const sorted = [...this.units].sort((a, b) => a.ord - b.ord || (a.utt < b.utt ? -1 : a.utt > b.utt ? 1 : 0))
    const tmp = join(dirname(this.path), `.${basename(this.path)}.tmp-${process.pid}`)
    const out = openSync(tmp, 'w')
    const enc = new BatchEncoder(this.schema, 'file')
    const fds = new Map<string, number>()
    try {
      for (const b of enc.begin()) writeSync(out, b)
      for (const u of sorted) {
        let fd = fds.get(u.log)
        if (fd === undefined) fds.set(u.log, (fd = openSync(u.log, 'r')))
        const buf = Buffer.alloc(u.length)
        readSync(fd, buf, 0, u.length, u.offset)
        for (const batch of RecordBatchReader.from(buf)) {
          for (const b of enc.encode(new RecordBatch(this.schema, batch.data))) writeSync(out, b)
        }
      }
      for (const b of enc.finish()) writeSync(out, b)
      fsyncSync(out)
    } finally {
      closeSync(out)
      for (const fd of fds.values()) closeSync(fd)
    }
    renameSync(tmp, this.path)
    const dfd = openSync(dirname(this.path), 'r')
    try {
      fsyncSync(dfd)
    } finally {
      closeSync(dfd)
    }
    rmSync(this.partial, { recursive: true, force: true })
  }

  /** Stop without merging (SIGINT/SIGTERM): what is logged stays for the next run. */
  suspend(): void {
    if (this.fd !== null) {
      fsyncSync(this.fd)
      closeSync(this.fd)
      this.fd = null
    }
  }
}
