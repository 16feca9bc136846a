import { type Data, type RecordBatch, type Schema, Type } from 'apache-arrow'
import { BufferRegion, FieldNode, Message, RecordBatch as RecordBatchHeader } from 'apache-arrow/ipc/metadata/message'
import { leanPlan, primitive } from './ipc-lean-batch.js'
import { type RecordBatchSlots, recordBatchSlots } from './ipc-message.js'

/**
 * Record-batch messages of the column types ktp writes, encoded without apache-arrow's writer: the
 * same bytes its RecordBatchWriter produces (VectorAssembler's buffers and field nodes, Message's
 * flatbuffer, the 8-byte alignment), at a fraction of the cost — its per-node visitors, the
 * flatbuffer builder and a dozen small writes cost tens of µs per one-utterance batch, which for
 * `ktp features` was a fifth of its run.
 *
 * The flatbuffer of a record batch without nulls, compression, variadic buffers or custom
 * metadata has one layout for a given number of field nodes and buffers (all its structs and
 * fields are present whatever their values, as long as the batch has rows and a body), so it is
 * built once by apache-arrow's own Message.encode and only its numbers are written per batch.
 * What this does not cover — nulls, sliced data, other types, batch metadata, empty batches —
 * gets `null` from `encode` and goes through apache-arrow (BatchEncoder). Tests compare the bytes
 * with apache-arrow's on many shapes (test/ipc-lean-encode.test.ts).
 */
export interface LeanMessage {
  /** Continuation marker, metadata length, flatbuffer, padding, then the body. */
  bytes: Uint8Array
  /** Metadata length including prefix and padding (a file footer's FileBlock metaDataLength). */
  meta: number
  body: number
}

interface Template {
  /** Prefix + flatbuffer + padding, to copy per message. */
  head: Uint8Array
  slots: RecordBatchSlots
}

const PREFIX = 8

function pad8(n: number): number {
  return (n + 7) & ~7
}

/** A little-endian int64 of a non-negative safe integer. */
function setInt64(v: DataView, at: number, x: number): void {
  v.setUint32(at, x >>> 0, true)
  v.setUint32(at + 4, Math.floor(x / 4294967296), true)
}

function template(nodes: number, buffers: number): Template {
  // Placeholder values: non-zero where zero would be a default that flatbuffers leaves out.
  const header = new RecordBatchHeader(
    1,
    Array.from({ length: nodes }, () => new FieldNode(1, 0)),
    Array.from({ length: buffers }, () => new BufferRegion(0, 8)),
    null,
  )
  const fb = Message.encode(Message.from(header, 8))
  const size = pad8(fb.byteLength + PREFIX)
  const head = new Uint8Array(size)
  const v = new DataView(head.buffer)
  v.setInt32(0, -1, true)
  v.setInt32(4, size - PREFIX, true)
  head.set(fb, PREFIX)
  return { head, slots: recordBatchSlots(v, PREFIX) }
}

/**
 * The field nodes and body buffers of a batch, in the IPC (pre-order) layout, as VectorAssembler
 * lays them out: a list's child is taken as sliced to the list's values (`sliced`: then so are a
 * fixed-size list's children), an unsliced one at its own length.
 */
class Assembly {
  nodeLengths: number[] = []
  buffers: Uint8Array[] = []

  /** false when `d` is not a column this encoder describes exactly. */
  add(d: Data, length: number, sliced: boolean): boolean {
    if (d.offset !== 0 || d.nullCount !== 0 || d.dictionary) return false
    this.nodeLengths.push(length)
    this.buffers.push(EMPTY) // validity: apache-arrow writes a placeholder when there are no nulls
    const t = d.type
    if (t.typeId === Type.Utf8 || t.typeId === Type.List) {
      const offsets = d.valueOffsets as Int32Array
      if (!(offsets instanceof Int32Array) || offsets[0] !== 0) return false
      const end = offsets[length]
      this.buffers.push(bytesOf(offsets.subarray(0, length + 1)))
      if (t.typeId === Type.Utf8) {
        this.buffers.push(bytesOf((d.values as Uint8Array).subarray(0, end)))
        return true
      }
      return d.children.length === 1 && this.add(d.children[0], end, true)
    }
    if (t.typeId === Type.FixedSizeList) {
      if (d.children.length !== 1) return false
      const child = d.children[0]
      return sliced ? this.add(child, length * d.stride, true) : this.add(child, child.length, false)
    }
    if (!primitive(t)) return false
    this.buffers.push(bytesOf((d.values as Uint8Array).subarray(0, length * d.stride)))
    return true
  }
}

const EMPTY = new Uint8Array(0)

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength)
}

export class LeanEncoder {
  private readonly tpl: Template

  private constructor(
    private readonly nodes: number,
    private readonly buffers: number,
  ) {
    this.tpl = template(nodes, buffers)
  }

  /** An encoder for batches of `schema`, or null when its column types are not all lean. */
  static for(schema: Schema): LeanEncoder | null {
    const plan = leanPlan(schema)
    return plan ? new LeanEncoder(plan.nodes, plan.buffers) : null
  }

  /** The message of `batch`, or null when apache-arrow must encode it (see the file comment). */
  encode(batch: RecordBatch): LeanMessage | null {
    const rows = batch.numRows
    if (rows < 1 || batch.metadata.size > 0 || batch.data.offset !== 0) return null
    const a = new Assembly()
    for (const d of batch.data.children) if (!a.add(d, d.length, false)) return null
    if (a.nodeLengths.length !== this.nodes || a.buffers.length !== this.buffers) return null
    const { head, slots } = this.tpl
    let body = 0
    for (const b of a.buffers) body += pad8(b.byteLength)
    if (body === 0) return null
    const bytes = new Uint8Array(head.byteLength + body)
    bytes.set(head)
    const v = new DataView(bytes.buffer)
    setInt64(v, slots.bodyLength, body)
    setInt64(v, slots.length, rows)
    for (let i = 0; i < a.nodeLengths.length; i++) {
      setInt64(v, slots.nodes + 16 * i, a.nodeLengths[i])
      setInt64(v, slots.nodes + 16 * i + 8, 0)
    }
    let at = 0
    for (let i = 0; i < a.buffers.length; i++) {
      const b = a.buffers[i]
      const padded = pad8(b.byteLength)
      // a buffer's region is its padded length, as apache-arrow's VectorAssembler records it
      setInt64(v, slots.buffers + 16 * i, at)
      setInt64(v, slots.buffers + 16 * i + 8, padded)
      bytes.set(b, head.byteLength + at) // the padding stays zero
      at += padded
    }
    return { bytes, meta: head.byteLength, body }
  }
}
