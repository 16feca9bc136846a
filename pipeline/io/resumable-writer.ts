import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  renameSync,
  rmSync,
  ftruncateSync,
  fstatSync,
  writeFileSync,
} from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { crc32 } from 'node:zlib'
import type { RecordBatch, Schema } from 'apache-arrow'
import { KtpError } from '../../schemas/errors.js'
import { uttId } from '../../schemas/utterance.js'
import { BatchEncoder, messageLengths } from './arrow-encoder.js'
import { MessageRefs } from './message-refs.js'
import { ensureDir, fsError, fsyncDir, writeAll } from './fs-errors.js'

/**
 * An Arrow file writer that survives `kill -9` at any instant (docs/ARCHITECTURE.md §3).
 *
 * While running, finished utterances are appended to a log in `OUT.partial/` in units of many
 * utterances each:
 *   'KTPG' | u32 header length | header JSON {utts: [[utt, ord, meta, body], …]} | u32 payload
 *   length | payload | u32 crc32
 * where the payload is the utterances' Arrow IPC record-batch messages back to back, encoded
 * once (no schema message: the schema is the writer's), `meta`/`body` their lengths. A unit
 * counts as finished only when it is whole and its CRC matches, so a torn tail is ignored and cut
 * off on restart: no utterance is lost or duplicated. A unit is written once it holds UNIT_BYTES
 * or its first utterance has waited UNIT_MS, so the log costs one write per unit, not one per
 * utterance (a per-utterance unit with its own schema message was most of the stage's time); a
 * kill -9 loses at most the one unit not yet written (≤ UNIT_MS of finished work, a timer sees to
 * that when utterances come slowly), whose utterances the next run computes again.
 * `finish()` writes the real file (Arrow file format, utterances in input order `ord`) to a
 * temporary name by copying the logged messages as they are (no decoding, no re-encoding), fsyncs
 * it, renames it over OUT and only then removes the partial directory. A restart after the rename
 * but before the removal just merges again to the same bytes.
 */
const MAGIC = 0x4750544b // 'KTPG' little-endian (format 1 was 'KTPU', one utterance per unit)
/** Log layout version, kept in meta.json: a partial dir of another layout is discarded. */
const FORMAT = 2
const UNIT_BYTES = 1 << 20
const UNIT_MS = 250
/** Bounds a unit's header (and the work a kill can lose) when utterances are tiny. */
const UNIT_UTTS = 1000
const SYNC_EVERY_MS = 1000
/** Largest read when copying logged messages into the final file. */
const COPY_BYTES = 8 << 20

/** Where one utterance's message lies in a log, as a log scan on resume reports it. */
interface UttRef {
  utt: string
  ord: number
  log: string
  /** Byte offset of the message in the log. */
  offset: number
  meta: number
  body: number
}

type UnitEntry = [utt: string, ord: number, meta: number, body: number]

function u32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n >>> 0)
  return b
}

function parseHeader(buf: Buffer, from: number, to: number): UnitEntry[] | null {
  try {
    const h = JSON.parse(buf.toString('utf8', from, to)) as { utts?: unknown }
    return Array.isArray(h.utts) ? (h.utts as UnitEntry[]) : null
  } catch {
    return null
  }
}

/** Scan one log; return the utterances of its whole units and the byte length they cover. */
function scanLog(path: string): { refs: UttRef[]; validBytes: number } {
  const buf = readFileSync(path)
  const refs: UttRef[] = []
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
    const entries = parseHeader(buf, hstart, hstart + hlen)
    if (!entries || entries.reduce((a, e) => a + e[2] + e[3], 0) !== plen) break
    let at = pstart
    for (const [utt, ord, meta, body] of entries) {
      refs.push({ utt, ord, log: path, offset: at, meta, body })
      at += meta + body
    }
    pos = end
  }
  return { refs, validBytes: pos }
}

export interface ResumableOptions {
  /** Fingerprint of what is being computed: a partial run with another fingerprint is discarded. */
  fingerprint: string
  /** Called with a line for the user (stderr) when earlier work is resumed or discarded. */
  log?: (msg: string) => void
  /** Unit bounds (default UNIT_BYTES, UNIT_MS): what one write covers and a kill -9 can lose. */
  unitBytes?: number
  unitMs?: number
}

export class ResumableArrowWriter {
  readonly path: string
  readonly partial: string
  readonly schema: Schema
  /**
   * Utterances finished by earlier runs: the caller skips them. This run's are not added: the
   * caller hands each utterance over once (the stage runner refuses a repeated id before it is
   * computed), and a set of every id would grow with the input.
   */
  readonly done: Set<string>
  private readonly refs = new MessageRefs()
  /** Encodes each utterance once; its messages are what the final file copies. */
  private readonly enc: BatchEncoder
  private fd: number | null = null
  private logPath = ''
  private offset = 0
  private lastSync = Date.now()
  /** The unit being filled: encoded messages and their entries. */
  private pending: Buffer[] = []
  private pendingEntries: UnitEntry[] = []
  private pendingBytes = 0
  private pendingSince = 0
  private timer: NodeJS.Timeout | undefined
  /** A failed timed flush (a full disk): thrown by the next write() or finish(), not from a timer. */
  private failed: unknown = null
  private readonly unitBytes: number
  private readonly unitMs: number

  private constructor(path: string, schema: Schema, refs: UttRef[], opts: ResumableOptions) {
    this.path = path
    this.partial = `${path}.partial`
    this.schema = schema
    for (const u of refs) this.refs.push(u.ord, u.log, u.offset, u.meta, u.body)
    this.done = new Set(refs.map((u) => u.utt))
    this.enc = new BatchEncoder(schema, 'stream')
    this.enc.begin() // the schema message: not logged, the final file has its own
    this.unitBytes = opts.unitBytes ?? UNIT_BYTES
    this.unitMs = opts.unitMs ?? UNIT_MS
  }

  static open(path: string, schema: Schema, opts: ResumableOptions): ResumableArrowWriter {
    // messageLengths() reads one message per utterance: dictionary batches would break that
    if (schema.dictionaries.size > 0)
      throw new KtpError('unsupported', `${path}: dictionary-encoded columns are not supported`)
    const partial = `${path}.partial`
    const metaPath = join(partial, 'meta.json')
    let refs: UttRef[] = []
    if (existsSync(partial)) {
      let meta: { fingerprint?: string; format?: number } = {}
      try {
        meta = JSON.parse(readFileSync(metaPath, 'utf8'))
      } catch {
        /* a partial dir without readable meta is from a run killed at birth: discard */
      }
      if (meta.fingerprint !== opts.fingerprint || meta.format !== FORMAT) {
        opts.log?.(
          meta.fingerprint === opts.fingerprint
            ? `${path}: discarding a partial run logged by another version of ktp`
            : `${path}: discarding a partial run made with other options or inputs`,
        )
        rmSync(partial, { recursive: true, force: true })
      } else {
        const seen = new Set<string>()
        for (const f of readdirSync(partial)
          .filter((n) => n.endsWith('.log'))
          .sort()) {
          const p = join(partial, f)
          const { refs: rs, validBytes } = scanLog(p)
          const fd = openSync(p, 'r+')
          try {
            if (fstatSync(fd).size > validBytes) ftruncateSync(fd, validBytes)
          } finally {
            closeSync(fd)
          }
          for (const u of rs) {
            if (seen.has(u.utt)) continue
            seen.add(u.utt)
            refs.push(u)
          }
        }
        if (refs.length > 0) opts.log?.(`${path}: resuming, ${refs.length} utterances already done`)
      }
    }
    if (!existsSync(partial)) {
      ensureDir(dirname(path))
      try {
        mkdirSync(partial)
        writeFileSync(metaPath, JSON.stringify({ fingerprint: opts.fingerprint, format: FORMAT }))
      } catch (err) {
        throw fsError(err, path, 'write (its resumable log)')
      }
      refs = []
    }
    return new ResumableArrowWriter(path, schema, refs, opts)
  }

  private ensureLog(): number {
    if (this.fd !== null) return this.fd
    const existing = readdirSync(this.partial).filter((n) => n.endsWith('.log')).length
    this.logPath = join(this.partial, `${String(existing).padStart(5, '0')}.log`)
    this.fd = openSync(this.logPath, 'a')
    this.offset = 0
    return this.fd
  }

  /** Add one finished utterance (a one-row batch); `ord` is its position in the input. */
  write(batch: RecordBatch, ord: number): void {
    this.throwFailed()
    const utt = uttId(batch)
    if (this.done.has(utt))
      throw new KtpError('duplicate-utt', `${this.path}: utterance '${utt}' was written by an earlier run`)
    // copied now: the caller may reuse the batch's buffers once write() returns
    const msg = this.enc.encodeOwned(batch)
    const { meta, body } = messageLengths(msg)
    if (this.pending.length === 0) {
      this.pendingSince = Date.now()
      // a slow stage (seconds per utterance) must not keep finished work unwritten until its next one
      this.timer = setTimeout(() => {
        // thrown here it would be an uncaught exception with a stack trace instead of one line
        try {
          this.flush()
        } catch (err) {
          this.failed = err
        }
      }, this.unitMs).unref()
    }
    this.pending.push(msg)
    this.pendingEntries.push([utt, ord, meta, body])
    this.pendingBytes += msg.length
    if (
      this.pendingBytes >= this.unitBytes ||
      this.pending.length >= UNIT_UTTS ||
      Date.now() - this.pendingSince >= this.unitMs
    )
      this.flush()
  }

  private throwFailed(): void {
    if (this.failed === null) return
    const err = this.failed
    this.failed = null
    throw err
  }

  /** Append the pending unit to the log. */
  private flush(): void {
    clearTimeout(this.timer)
    if (this.pending.length === 0) return
    const header = Buffer.from(JSON.stringify({ utts: this.pendingEntries }), 'utf8')
    const plen = u32(this.pendingBytes)
    // crc covers header + payload length + payload, which is what scanLog checks
    let crc = crc32(plen, crc32(header))
    for (const m of this.pending) crc = crc32(m, crc)
    const unit = Buffer.concat([u32(MAGIC), u32(header.length), header, plen, ...this.pending, u32(crc)])
    let fd: number
    try {
      fd = this.ensureLog()
      writeAll(fd, unit)
    } catch (err) {
      // A torn unit is cut off on restart (its CRC fails), and its utterances are computed again
      // then; drop them here so that suspend() does not try the same write once more.
      this.pending = []
      this.pendingEntries = []
      this.pendingBytes = 0
      throw fsError(err, this.path, 'write (its resumable log)')
    }
    let at = this.offset + 8 + header.length + 4
    for (const [, ord, meta, body] of this.pendingEntries) {
      this.refs.push(ord, this.logPath, at, meta, body)
      at += meta + body
    }
    this.offset = at + 4
    this.pending = []
    this.pendingEntries = []
    this.pendingBytes = 0
    // kill -9 cannot lose what write() handed to the kernel; fsync bounds what a power cut can.
    if (Date.now() - this.lastSync > SYNC_EVERY_MS) {
      try {
        fsyncSync(fd)
      } catch (err) {
        throw fsError(err, this.path, 'write (its resumable log)')
      }
      this.lastSync = Date.now()
    }
  }

  get count(): number {
    return this.refs.size + this.pending.length
  }

  /** Write the pending unit, fsync and close the log. */
  private closeLog(): void {
    try {
      this.flush()
      if (this.fd !== null) fsyncSync(this.fd)
    } catch (err) {
      throw fsError(err, this.path, 'write (its resumable log)')
    } finally {
      if (this.fd !== null) closeSync(this.fd)
      this.fd = null
    }
  }

  /** Write OUT atomically from all finished utterances, in input order, and drop the partial dir. */
  async finish(): Promise<void> {
    this.throwFailed()
    this.closeLog()
    const refs = this.refs
    const sorted = refs.byOrd()
    const tmp = join(dirname(this.path), `.${basename(this.path)}.tmp-${process.pid}`)
    let out: number
    try {
      out = openSync(tmp, 'w')
    } catch (err) {
      throw fsError(err, this.path, 'write')
    }
    const enc = new BatchEncoder(this.schema, 'file')
    const fds = new Map<string, number>()
    let copy = Buffer.alloc(0)
    let whole = false
    try {
      for (const b of enc.begin()) writeAll(out, b)
      // Copy runs of messages that lie back to back in one log with one read each.
      for (let i = 0; i < sorted.length; ) {
        const first = sorted[i]
        const log = refs.log(first)
        const start = refs.offset(first)
        let end = start + refs.meta(first) + refs.body(first)
        let j = i + 1
        while (
          j < sorted.length &&
          refs.sameLog(sorted[j], first) &&
          refs.offset(sorted[j]) === end &&
          end - start < COPY_BYTES
        ) {
          end += refs.meta(sorted[j]) + refs.body(sorted[j])
          j++
        }
        let fd = fds.get(log)
        if (fd === undefined) {
          fd = openSync(log, 'r')
          fds.set(log, fd)
        }
        // one buffer for every run: a fresh 8 MB buffer per run left them to the GC, which let
        // tens of MB of them pile up while this loop held the event loop (a peak growing with the output)
        if (copy.length < end - start) copy = Buffer.allocUnsafe(Math.max(COPY_BYTES, end - start))
        const buf = copy.subarray(0, end - start)
        for (let got = 0; got < buf.length; ) {
          const n = readSync(fd, buf, got, buf.length - got, start + got)
          if (n === 0)
            throw new KtpError(
              'truncated-log',
              `${log}: ends before the utterance at input position ${refs.ord(first)}`,
            )
          got += n
        }
        const run = sorted.subarray(i, j)
        const lengths = {
          length: run.length,
          meta: (k: number) => refs.meta(run[k]),
          body: (k: number) => refs.body(run[k]),
        }
        for (const b of enc.appendEncoded(buf, lengths)) writeAll(out, b)
        i = j
      }
      for (const b of enc.finish()) writeAll(out, b)
      fsyncSync(out)
      closeSync(out)
      out = -1
      renameSync(tmp, this.path)
      whole = true
    } catch (err) {
      // the finished utterances stay in OUT.partial/: the same command again only merges
      throw fsError(err, this.path, 'write')
    } finally {
      if (out >= 0) closeSync(out)
      for (const fd of fds.values()) closeSync(fd)
      if (!whole) rmSync(tmp, { force: true })
    }
    fsyncDir(dirname(this.path))
    rmSync(this.partial, { recursive: true, force: true })
  }

  /** Stop without merging (SIGINT/SIGTERM, a fatal error): what is finished stays for the next run. */
  suspend(): void {
    try {
      this.closeLog()
    } catch {
      // suspend() runs while another error is on its way up (or on a signal): that one is the
      // one to report; a torn unit is cut off on restart
    }
  }
}
