import {
  type RecordBatch,
  RecordBatchFileWriter,
  RecordBatchStreamWriter,
  RecordBatchWriter,
  type Schema,
} from 'apache-arrow'
import type { FileBlock } from 'apache-arrow/ipc/metadata/file'
import { compareSchemas } from 'apache-arrow/visitor/typecomparator'
import { KtpError } from '../../schemas/errors.js'
import { sameColumns } from '../../schemas/kinds.js'
import { FileBlocks, sameFooterAsArrow } from './arrow-footer.js'
import { type LeanMessage, LeanEncoder } from './ipc-lean-encode.js'

/**
 * Synchronous Arrow IPC encoding: `encode(batch)` returns exactly the bytes that batch adds to
 * the stream/file. apache-arrow's writers push bytes into an async queue; we intercept its
 * `_write` so that the caller decides when and how bytes reach the disk (fsync, resumable logs,
 * backpressure on stdout) without a second buffering layer.
 */
type Chunk = ArrayBufferView | string

function toBytes(chunk: Chunk): Uint8Array {
  if (typeof chunk === 'string') return new TextEncoder().encode(chunk)
  return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
}

// Arrow's writer classes keep `_write`/`_started`/`_position` protected; both subclasses route
// every chunk into `captured` instead of the writer's async sink.
interface Capturing {
  captured: Uint8Array[]
  _position: number
  _recordBatchBlocks: FileBlock[]
  _dictionaryBlocks: FileBlock[]
  blocks?: FileBlocks
  _sink: unknown
  reset(sink?: undefined, schema?: Schema): unknown
  write(batch: RecordBatch): void
  finish(): unknown
}

function capture(self: { captured: Uint8Array[]; _started: boolean; _position: number }, chunk: Chunk): void {
  if (!self._started) return
  const b = toBytes(chunk)
  if (b.byteLength > 0) {
    self.captured.push(b)
    self._position += b.byteLength
  }
}

class CapturingStreamWriter extends RecordBatchStreamWriter {
  captured: Uint8Array[] = []
  protected _write(chunk: Chunk) {
    capture(this as never, chunk)
    return this
  }
}

class CapturingFileWriter extends RecordBatchFileWriter {
  captured: Uint8Array[] = []
  /** The footer's record-batch list, kept by the BatchEncoder (arrow-footer.ts says why). */
  blocks = new FileBlocks()
  protected _write(chunk: Chunk) {
    capture(this as never, chunk)
    return this
  }
  protected _writeFooter(schema: Schema) {
    const self = this as unknown as Capturing
    // (ktp writes no dictionaries; a writer that did would take apache-arrow's own path)
    if (self._dictionaryBlocks.length > 0 || !sameFooterAsArrow(schema)) {
      self._recordBatchBlocks = [...this.blocks.toFileBlocks(), ...self._recordBatchBlocks]
      this.blocks = new FileBlocks()
      return super._writeFooter(schema)
    }
    const footer = this.blocks.encodeFooter(schema)
    // the end-of-stream marker for sequential readers, then footer, its length and the magic, as
    // RecordBatchFileWriter._writeFooter writes them
    ;(RecordBatchWriter.prototype as unknown as { _writeFooter(this: unknown, s: Schema): unknown })._writeFooter.call(
      this,
      schema,
    )
    this._write(footer)
    this._write(Int32Array.of(footer.byteLength))
    ;(this as unknown as { _writeMagic(): unknown })._writeMagic()
    // (apache-arrow's reset() empties its own lists after a footer)
    this.blocks = new FileBlocks()
    return this
  }
}

export type IpcFormat = 'stream' | 'file'

export class BatchEncoder {
  private readonly writer: Capturing
  private started = false
  private readonly checked = new WeakSet<Schema>()
  readonly schema: Schema
  /** Encodes the batches it can describe exactly (ipc-lean-encode.ts); null: apache-arrow does all. */
  private lean: LeanEncoder | null
  /** Whether the lean encoder's first message matched apache-arrow's (checked once per encoder). */
  private leanChecked = false
  /** Batch schemas the writer takes as its own (apache-arrow's compareSchemas). */
  private readonly writerSchemas = new WeakMap<Schema, boolean>()
  /** Whether the last encode() returned one freshly allocated lean message. */
  private ownedLast = false

  constructor(schema: Schema, format: IpcFormat) {
    this.schema = schema
    const W = format === 'file' ? CapturingFileWriter : CapturingStreamWriter
    this.writer = new W({ autoDestroy: false }) as unknown as Capturing
    this.lean = LeanEncoder.for(schema)
  }

  private take(): Uint8Array[] {
    const out = this.writer.captured
    this.writer.captured = []
    return out
  }

  /** Schema header bytes (written once, before any batch). */
  begin(): Uint8Array[] {
    if (!this.started) {
      this.started = true
      // Writing an empty batch list starts the writer and emits the schema message.
      this.writer.reset(undefined, this.schema)
    }
    return this.take()
  }

  /**
   * Bytes of one batch. Arrow's writer silently closes when a later batch's schema differs
   * (docs/CONVENTIONS.md, apache-arrow), so we check every batch ourselves and fail loudly instead.
   */
  encode(batch: RecordBatch): Uint8Array[] {
    // stages reuse one schema object for all their batches: compare each distinct schema once
    if (!this.checked.has(batch.schema) && !sameColumns(batch.schema, this.schema)) {
      throw new KtpError('schema-changed', "a record batch has different columns from the stream's schema")
    }
    this.checked.add(batch.schema)
    const head = this.begin()
    const lean = this.leanMessage(batch)
    this.ownedLast = false
    if (lean && this.leanChecked) {
      this.ownedLast = head.length === 0
      const w = this.writer
      w.blocks?.push(w._position, lean.meta, lean.body)
      w._position += lean.bytes.byteLength
      return head.concat([lean.bytes])
    }
    this.writer.write(batch)
    // apache-arrow's writers list every batch's position for a file footer, streams too: a stream
    // has no footer, and the list grew by one object per utterance for the whole run (issue 16).
    // A file's go to the typed list its footer is written from (arrow-footer.ts).
    const listed = this.writer._recordBatchBlocks
    for (const b of listed) this.writer.blocks?.push(b.offset, b.metaDataLength, b.bodyLength)
    listed.length = 0
    const bytes = this.take()
    if (lean) this.checkLean(lean, bytes)
    return head.concat(bytes)
  }

  /**
   * encode() as one buffer that shares no memory with the batch (the caller may keep it after the
   * batch's buffers are reused): a lean message is that already, apache-arrow's chunks are copied.
   */
  encodeOwned(batch: RecordBatch): Buffer {
    const parts = this.encode(batch)
    if (this.ownedLast) return Buffer.from(parts[0].buffer, parts[0].byteOffset, parts[0].byteLength)
    return Buffer.concat(parts)
  }

  /** The lean encoding of `batch` when it has one and the writer would take the batch as it is. */
  private leanMessage(batch: RecordBatch): LeanMessage | null {
    if (!this.lean || !this.writer._sink) return null
    let same = this.writerSchemas.get(batch.schema)
    if (same === undefined) {
      // a schema the writer does not take as its own makes it start a new stream: its business
      same = compareSchemas(batch.schema, this.schema)
      this.writerSchemas.set(batch.schema, same)
    }
    return same ? this.lean.encode(batch) : null
  }

  /**
   * The first lean message is also encoded by apache-arrow (the bytes that are kept): lean
   * encoding goes on only if they are the same, so a future apache-arrow that lays messages out
   * otherwise costs speed, never different files.
   */
  private checkLean(lean: LeanMessage, arrow: Uint8Array[]): void {
    const a = Buffer.concat(arrow)
    if (Buffer.from(lean.bytes.buffer, lean.bytes.byteOffset, lean.bytes.byteLength).equals(a)) this.leanChecked = true
    else this.lean = null
  }

  /**
   * Add record-batch messages encoded earlier by another encoder of the same schema (e.g. a
   * stream encoder's `encode()` output, kept in a resumable log) without decoding them: the bytes
   * are returned as they are and, for the file format, listed in the footer. `lengths` gives
   * each message's metadata and body lengths (see `messageLengths`), in the order of `bytes`:
   * read through accessors, so a caller holding them in typed columns makes no object per message.
   */
  appendEncoded(bytes: Uint8Array, lengths: MessageLengthList): Uint8Array[] {
    const head = this.begin()
    const w = this.writer
    let at = w._position
    for (let k = 0; k < lengths.length; k++) {
      const meta = lengths.meta(k)
      const body = lengths.body(k)
      w.blocks?.push(at, meta, body)
      at += meta + body
    }
    if (at - w._position !== bytes.byteLength) {
      throw new KtpError(
        'bad-message',
        `encoded messages of ${at - w._position} bytes announced, ${bytes.byteLength} given`,
      )
    }
    w._position = at
    return bytes.byteLength > 0 ? head.concat([bytes]) : head
  }

  /** Footer / end-of-stream bytes. */
  finish(): Uint8Array[] {
    const head = this.begin()
    this.writer.finish()
    return head.concat(this.take())
  }
}

/** Byte lengths of one encapsulated IPC message: prefix + flatbuffer metadata + padding, and body. */
export interface MessageLengths {
  meta: number
  body: number
}

/** The lengths of several messages, by index. */
export interface MessageLengthList {
  readonly length: number
  meta(k: number): number
  body(k: number): number
}

/**
 * The lengths of the one record-batch message `msg` holds (an `encode()` result joined, schema
 * header excluded; a schema without dictionaries): the metadata length follows the 0xFFFFFFFF
 * continuation marker, the body is the rest.
 */
export function messageLengths(msg: Uint8Array): MessageLengths {
  const dv = new DataView(msg.buffer, msg.byteOffset, msg.byteLength)
  if (msg.byteLength < 8 || dv.getInt32(0, true) !== -1) {
    throw new KtpError('bad-message', 'an encoded record batch does not start with an IPC continuation marker')
  }
  const meta = 8 + dv.getInt32(4, true)
  if (meta > msg.byteLength)
    throw new KtpError(
      'bad-message',
      `an encoded record batch is shorter (${msg.byteLength} B) than its metadata (${meta} B)`,
    )
  return { meta, body: msg.byteLength - meta }
}
