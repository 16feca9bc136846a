import { Data, type DataType, type Field, RecordBatch, type Schema, Struct, Type } from 'apache-arrow'
import type { MessageHeader } from './ipc-message.js'

/**
 * Record batches of the column types ktp writes (utf8 ids; primitive numbers; lists and lists of
 * fixed-size lists of them), built as typed-array views straight into a message body: the same
 * Data apache-arrow's VectorLoader + makeData + RecordBatch constructor build (same buffers, same
 * lengths and null counts), without their per-node visitor dispatch, copies of the schema and
 * re-validation, which cost 15–50 µs per one-utterance batch (issue 16). A schema with any other
 * type gets no plan (`leanPlan` returns null) and its files are read by apache-arrow.
 */
export interface LeanPlan {
  schema: Schema
  struct: Struct
  /** Field nodes and buffers a record batch of this schema must have. */
  nodes: number
  buffers: number
}

const EMPTY = new Uint8Array(0)

type Primitive = { ArrayType: { new (b: ArrayBufferLike, o: number, n: number): ArrayLike<number> } }

export function primitive(t: DataType): boolean {
  if (t.typeId === Type.Float) return true
  return t.typeId === Type.Int && (t as unknown as { bitWidth: number }).bitWidth <= 32
}

/** Nodes and buffers of one column of type t, or null when t is not a lean type. */
function count(t: DataType): { nodes: number; buffers: number } | null {
  if (primitive(t)) return { nodes: 1, buffers: 2 }
  if (t.typeId === Type.Utf8) return { nodes: 1, buffers: 3 }
  if (t.typeId === Type.List || t.typeId === Type.FixedSizeList) {
    const child = count((t.children as Field[])[0].type)
    if (!child) return null
    return { nodes: child.nodes + 1, buffers: child.buffers + (t.typeId === Type.List ? 2 : 1) }
  }
  return null
}

export function leanPlan(schema: Schema): LeanPlan | null {
  let nodes = 0
  let buffers = 0
  for (const f of schema.fields) {
    const c = count(f.type)
    if (!c) return null
    nodes += c.nodes
    buffers += c.buffers
  }
  return { schema, struct: new Struct(schema.fields), nodes, buffers }
}

/** Walks a message's nodes and buffers in order (pre-order, as the IPC format lays them out). */
class Cursor {
  node = 0
  buf = 0
  constructor(
    readonly h: MessageHeader,
    readonly body: Uint8Array,
  ) {}

  bytes(): Uint8Array {
    const i = this.buf++
    const off = this.h.bufOffsets[i]
    const len = this.h.bufLengths[i]
    if (off + len > this.body.byteLength) throw new Error(`buffer ${i} lies outside the message body`)
    return this.body.subarray(off, off + len)
  }

  /** A typed array over the next buffer (copied only if its offset is not aligned for the type). */
  typed<T>(ArrayType: Primitive['ArrayType'] & { BYTES_PER_ELEMENT: number }): T {
    const b = this.bytes()
    const n = Math.floor(b.byteLength / ArrayType.BYTES_PER_ELEMENT)
    if (b.byteOffset % ArrayType.BYTES_PER_ELEMENT === 0) return new ArrayType(b.buffer, b.byteOffset, n) as T
    return new ArrayType(b.slice().buffer, 0, n) as T
  }

  bitmap(nulls: number): Uint8Array {
    const b = this.bytes()
    return nulls > 0 ? b : EMPTY
  }
}

function column(t: DataType, c: Cursor): Data {
  const i = c.node++
  const length = c.h.nodeLengths[i]
  const nulls = c.h.nodeNulls[i]
  const bitmap = c.bitmap(nulls)
  switch (t.typeId) {
    case Type.Utf8: {
      const offsets = c.typed<Int32Array>(Int32Array)
      return new Data(t, 0, length, nulls, [offsets, c.bytes(), bitmap] as never)
    }
    case Type.List: {
      const offsets = c.typed<Int32Array>(Int32Array)
      const child = column((t.children as Field[])[0].type, c)
      return new Data(t, 0, length, nulls, [offsets, undefined, bitmap] as never, [child])
    }
    case Type.FixedSizeList: {
      const child = column((t.children as Field[])[0].type, c)
      return new Data(t, 0, length, nulls, [undefined, undefined, bitmap] as never, [child])
    }
    default: {
      const values = c.typed((t as unknown as Primitive).ArrayType as never)
      return new Data(t, 0, length, nulls, [undefined, values, bitmap] as never)
    }
  }
}

/**
 * The record batch of a plain message header (ipc-message.ts) over its body, or null for a batch
 * whose columns are not all as long as the batch (apache-arrow pads those with nulls: its decoder
 * takes it).
 */
export function leanBatch(plan: LeanPlan, h: MessageHeader, body: Uint8Array): RecordBatch | null {
  if (h.nodeLengths.length !== plan.nodes || h.bufOffsets.length !== plan.buffers) {
    throw new Error(
      `record batch has ${h.nodeLengths.length} field nodes and ${h.bufOffsets.length} buffers, its schema needs ${plan.nodes} and ${plan.buffers}`,
    )
  }
  const c = new Cursor(h, body)
  const children = plan.schema.fields.map((f) => column(f.type, c))
  for (const d of children) if (d.length !== h.length) return null
  const data = new Data(plan.struct, 0, h.length, 0, [undefined, undefined, EMPTY] as never, children)
  // the constructor would copy the schema and re-check every column's length (ensureSameLengthData),
  // per utterance; its fields are set directly instead, as apache-arrow's own result would have them
  const batch = Object.create(RecordBatch.prototype) as RecordBatch & { _metadata: Map<string, string> }
  Object.assign(batch, { schema: plan.schema, data, _metadata: new Map() })
  return batch
}
