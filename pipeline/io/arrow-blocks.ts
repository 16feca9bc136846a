import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { type RecordBatch, RecordBatchReader, type Schema } from 'apache-arrow'
import { KtpError } from '../../schemas/errors.js'
import { type KindSpec, validateSchema } from '../../schemas/kinds.js'
import { rowsOf } from '../../schemas/utterance.js'
import { BatchEncoder } from './arrow-encoder.js'
import { shareBody, takeBody } from './body-pool.js'
import { type LeanPlan, leanBatch, leanPlan } from './ipc-lean-batch.js'
import { HEADER_RECORD_BATCH, HEADER_SCHEMA, type MessageHeader, readMessageHeader } from './ipc-message.js'

/**
 * A synchronous reader of the utterances of an Arrow file on disk (IPC file or stream format), for
 * the training feeders: no promise, file-handle round trip or highland step per utterance (issue 16).
 * Messages are read with `readSync` into one reused block buffer (a fresh 4 MB buffer per block cost
 * more than decoding: every page of it is faulted in again); each record batch's body is then copied
 * into its own buffer, since the batch's arrays are views into it that a consumer may keep (shuffle
 * buffers). Bodies of the column types ktp writes are decoded by ipc-lean-batch.ts; any other schema,
 * and any message that module does not describe (compressed bodies, …), by apache-arrow.
 * An IPC *file* holds the stream's messages between its leading magic and its footer, and its schema
 * in the footer; the layout of a file (schema, where its messages lie) is kept between opens of the
 * same unchanged file, as the trainer reopens its inputs every epoch.
 */
export interface ArrowBlocks {
  name: string
  schema: Schema
  spec: KindSpec
  /** The next utterance (a one-row record batch: batches of several rows are split), or null at the end. */
  next(): RecordBatch | null
  close(): void
  /** Record batches decoded so far by ipc-lean-batch.ts and by apache-arrow (tests, diagnostics). */
  decoded: { lean: number; arrow: number }
}

const MAGIC = 'ARROW1'
const EOS = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])
// bodies at least this long are read from the file straight into their own buffer (one copy less)
const DIRECT_BODY = 1 << 16
const READ_AHEAD = 1 << 18

function corrupt(name: string, err: unknown): KtpError {
  if (err instanceof KtpError) return err
  return new KtpError(
    'corrupt-arrow',
    `${name}: not a readable Arrow IPC file or stream (${(err as Error)?.message ?? String(err)})`,
  )
}

/** Where an Arrow file's messages lie and what they hold. */
interface Layout {
  schema: Schema
  /** Bytes [start, end) hold record-batch messages (and maybe a schema message, skipped). */
  start: number
  end: number
  /** The schema as a stream message, for apache-arrow's decoder (made on first need for files). */
  schemaMessage: () => Uint8Array
  plan: LeanPlan | null
}

const layouts = new Map<string, { key: string; layout: Layout }>()

/** A window onto the file through one reused buffer, grown only for a message larger than it. */
class Window {
  buf: Buffer
  view: DataView
  /** File offset of buf[0], and how many bytes of buf are filled from there. */
  base = 0
  filled = 0

  constructor(
    readonly fd: number,
    readonly end: number,
    size: number,
  ) {
    this.buf = Buffer.allocUnsafeSlow(Math.max(64, size))
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength)
  }

  /** Make file bytes [pos, pos + n) present; returns their index in buf. */
  at(pos: number, n: number): number {
    if (pos >= this.base && pos + n <= this.base + this.filled) return pos - this.base
    if (pos + n > this.end) throw new Error(`unexpected end of file: ${n} bytes needed at byte ${pos}`)
    const keep = pos >= this.base && pos < this.base + this.filled ? this.base + this.filled - pos : 0
    if (n > this.buf.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(n, 2 * this.buf.length))
      this.buf.copy(grown, 0, pos - this.base, pos - this.base + keep)
      this.buf = grown
      this.view = new DataView(grown.buffer, grown.byteOffset, grown.byteLength)
    } else if (keep > 0) {
      this.buf.copyWithin(0, pos - this.base, pos - this.base + keep)
    }
    this.base = pos
    this.filled = keep
    while (this.filled < n) {
      // read ahead a little (many small messages per read), not a whole block: long bodies are
      // read straight into their own buffers by copy() instead of passing through this one
      const want = Math.min(
        this.buf.length - this.filled,
        this.end - (pos + this.filled),
        Math.max(n - this.filled, READ_AHEAD),
      )
      const got = readSync(this.fd, this.buf, this.filled, want, pos + this.filled)
      if (got <= 0) throw new Error(`unexpected end of file at byte ${pos + this.filled}`)
      this.filled += got
    }
    return 0
  }

  /** File bytes [pos, pos + n) in a buffer of their own (from the body pool: see next()). */
  copy(pos: number, n: number): Buffer {
    const out = takeBody(n)
    // what the window holds already, then the rest: straight from the file when it is long
    let done = 0
    if (pos >= this.base && pos < this.base + this.filled) {
      done = Math.min(n, this.base + this.filled - pos)
      this.buf.copy(out, 0, pos - this.base, pos - this.base + done)
    }
    if (done === n) return out
    if (n - done >= DIRECT_BODY) {
      if (pos + n > this.end) throw new Error(`unexpected end of file: ${n} bytes needed at byte ${pos}`)
      while (done < n) {
        const r = readSync(this.fd, out, done, n - done, pos + done)
        if (r <= 0) throw new Error(`unexpected end of file at byte ${pos + done}`)
        done += r
      }
      return out
    }
    const i = this.at(pos + done, n - done)
    this.buf.copy(out, done, i, i + n - done)
    return out
  }
}

interface Message {
  header: MessageHeader
  /** The whole message (prefix, metadata, body), for apache-arrow's decoder; only when `raw` is asked. */
  bytes?: Uint8Array
  body: Buffer
}

/** The message at file offset pos (and the offset after it), or null at the end of the stream. */
function readMessage(w: Window, pos: number, raw: (h: MessageHeader) => boolean): [Message, number] | null {
  if (pos + 4 > w.end) return null
  let i = w.at(pos, 4)
  let len = w.view.getInt32(i, true)
  let prefix = 4
  if (len === -1) {
    if (pos + 8 > w.end) return null
    i = w.at(pos, 8)
    len = w.view.getInt32(i + 4, true)
    prefix = 8
  }
  if (len === 0) return null
  if (len < 0) throw new Error(`bad message length ${len} at byte ${pos}`)
  i = w.at(pos, prefix + len)
  const header = readMessageHeader(w.view, i + prefix, len)
  const bodyAt = pos + prefix + len
  let bytes: Uint8Array | undefined
  if (raw(header)) {
    bytes = Buffer.alloc(prefix + len + header.bodyLength)
    bytes.set(w.buf.subarray(i, i + prefix + len), 0)
  }
  const body = w.copy(bodyAt, header.bodyLength)
  bytes?.set(body, prefix + len)
  return [{ header, bytes, body }, bodyAt + header.bodyLength]
}

function schemaOf(streamBytes: Uint8Array): Schema {
  const reader = RecordBatchReader.from(streamBytes)
  reader.open()
  if (!reader.schema) throw new Error('no schema')
  return reader.schema
}

/** The layout of an IPC file: the schema from its footer (bytes [footerStart, size)). */
function fileLayout(fd: number, footerStart: number, size: number): Layout {
  const footer = Buffer.alloc(size - footerStart)
  readSync(fd, footer, 0, footer.length, footerStart)
  // magic + footer + length + magic: a file with no record batch in it, whose reader gives the schema
  const schema = schemaOf(Buffer.concat([Buffer.from('ARROW1\0\0', 'latin1'), footer]))
  let message: Uint8Array | null = null
  const schemaMessage = () => {
    message ??= Buffer.concat(new BatchEncoder(schema, 'stream').begin())
    return message
  }
  return { schema, start: 8, end: footerStart, schemaMessage, plan: leanPlan(schema) }
}

/** The layout of an IPC stream: its first message is the schema. */
function streamLayout(fd: number, size: number, path: string): Layout {
  const w = new Window(fd, size, Math.min(size, 1 << 16))
  const first = readMessage(w, 0, () => true)
  if (!first) throw new KtpError('corrupt-arrow', `${path}: empty input, expected an Arrow IPC stream or file`)
  const [m, after] = first
  if (m.header.type !== HEADER_SCHEMA) throw new Error('the stream does not start with a schema')
  const message = m.bytes!
  const schema = schemaOf(Buffer.concat([message, EOS]))
  return { schema, start: after, end: size, schemaMessage: () => message, plan: leanPlan(schema) }
}

function layoutOf(fd: number, path: string): Layout {
  const st = fstatSync(fd)
  const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`
  const known = layouts.get(path)
  if (known?.key === key) return known.layout
  const size = st.size
  const head = Buffer.alloc(Math.min(8, size))
  readSync(fd, head, 0, head.length, 0)
  let layout: Layout
  if (head.toString('latin1', 0, 6) === MAGIC) {
    if (size < 18) throw new Error('too short for an Arrow file')
    const tail = Buffer.alloc(10)
    readSync(fd, tail, 0, 10, size - 10)
    if (tail.toString('latin1', 4, 10) !== MAGIC)
      throw new KtpError(
        'corrupt-arrow',
        `${path}: truncated Arrow file (it starts like one but has no footer: cut short by a copy or by a writer that did not finish)`,
      )
    const footerStart = size - 10 - tail.readInt32LE(0)
    if (footerStart < 8) throw new Error('footer length out of range')
    layout = fileLayout(fd, footerStart, size)
  } else {
    layout = streamLayout(fd, size, path)
  }
  if (layouts.size >= 32) layouts.clear()
  layouts.set(path, { key, layout })
  return layout
}

/** The record batches of one message, by apache-arrow (a one-message stream after the schema). */
function arrowBatches(layout: Layout, message: Uint8Array): RecordBatch[] {
  const reader = RecordBatchReader.from(Buffer.concat([layout.schemaMessage(), message, EOS]))
  return [...(reader as unknown as Iterable<RecordBatch>)]
}

export function openArrowBlocks(path: string, accept: string[], blockBytes = 1 << 22): ArrowBlocks {
  let fd: number | null
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new KtpError('no-file', `${path}: no such file`)
    if (code === 'EACCES') throw new KtpError('unreadable', `${path}: permission denied`)
    throw err
  }
  const close = () => {
    if (fd != null) closeSync(fd)
    fd = null
  }
  try {
    const layout = layoutOf(fd, path)
    const spec = validateSchema(layout.schema, accept, path)
    const plan = layout.plan
    const w = new Window(fd, layout.end, Math.min(blockBytes, layout.end - layout.start))
    const needsArrow = (h: MessageHeader) => !plan || h.type !== HEADER_RECORD_BATCH || !h.plain
    let pos = layout.start
    let rows: Generator<RecordBatch> | null = null
    let pending: RecordBatch[] = []
    const decoded = { lean: 0, arrow: 0 }
    const nextBatch = (): RecordBatch | null => {
      while (pending.length === 0) {
        const at = pos
        const m = readMessage(w, at, needsArrow)
        if (!m) return null
        const [msg, after] = m
        pos = after
        if (msg.header.type === HEADER_SCHEMA) continue
        const lean = msg.bytes ? null : leanBatch(plan!, msg.header, msg.body)
        // a body stays lent (body-pool.ts) only as the one utterance it holds: a consumer hands an
        // utterance back by its arrays' buffer, which must then be no other utterance's
        if (lean?.numRows !== 1) shareBody(msg.body.buffer)
        if (lean) {
          decoded.lean++
          return lean
        }
        // not lean after all (columns shorter than the batch): read it again, whole, for apache-arrow
        const bytes = msg.bytes ?? readMessage(w, at, () => true)![0].bytes!
        pending = arrowBatches(layout, bytes)
        decoded.arrow += pending.length
      }
      return pending.shift()!
    }
    return {
      name: path,
      schema: layout.schema,
      spec,
      next() {
        try {
          for (;;) {
            if (rows) {
              const r = rows.next()
              if (!r.done) return r.value
              rows = null
            }
            const b = nextBatch()
            if (!b) return null
            if (b.numRows === 1) return b
            rows = rowsOf(b)
          }
        } catch (err) {
          close()
          throw corrupt(path, err)
        }
      },
      close,
      decoded,
    }
  } catch (err) {
    close()
    throw corrupt(path, err)
  }
}
