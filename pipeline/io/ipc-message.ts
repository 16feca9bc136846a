/**
 * The header of one Arrow IPC message, read straight from its flatbuffer (format/Message.fbs) with a
 * DataView: enough for the lean record-batch decoder (ipc-lean-batch.ts) — the body length, and for
 * a record batch its row count, field nodes and buffer ranges. apache-arrow's own decoding builds
 * several objects per message and per node; the feeders read one message per utterance (issue 16).
 * Anything this does not describe (a compressed body, custom metadata, variadic buffers, a
 * pre-1.0 metadata version) is flagged `plain: false` and goes to apache-arrow's decoder instead.
 */
export const HEADER_SCHEMA = 1
export const HEADER_RECORD_BATCH = 3
// MetadataVersion.V4 (Arrow ≥ 0.15): the layout read here
const V4 = 3

export interface MessageHeader {
  /** MessageHeader union type: 1 schema, 2 dictionary batch, 3 record batch, … */
  type: number
  bodyLength: number
  /** A record batch this module can describe fully (see above). */
  plain: boolean
  /** Record batches: the row count, and per field node (pre-order) its length and null count. */
  length: number
  nodeLengths: number[]
  nodeNulls: number[]
  /** Per buffer, its offset and length in the body. */
  bufOffsets: number[]
  bufLengths: number[]
}

function int64(v: DataView, at: number): number {
  const lo = v.getUint32(at, true)
  const hi = v.getInt32(at + 4, true)
  if (hi < 0 || hi >= 1 << 21) throw new Error(`64-bit value out of range at byte ${at}`)
  return hi * 4294967296 + lo
}

/** The absolute position of field `id` of the table at `table`, or 0 when the field is absent. */
function fieldPos(v: DataView, table: number, id: number): number {
  const vtable = table - v.getInt32(table, true)
  const vsize = v.getUint16(vtable, true)
  const slot = 4 + 2 * id
  if (slot + 2 > vsize) return 0
  const off = v.getUint16(vtable + slot, true)
  return off === 0 ? 0 : table + off
}

function deref(v: DataView, pos: number): number {
  return pos + v.getUint32(pos, true)
}

/** Decode the Message flatbuffer in view bytes [at, at + len). */
export function readMessageHeader(v: DataView, at: number, len: number): MessageHeader {
  if (len < 8) throw new Error('message metadata too short')
  const root = at + v.getUint32(at, true)
  if (root >= at + len) throw new Error('message metadata offset out of range')
  const versionPos = fieldPos(v, root, 0)
  const version = versionPos ? v.getInt16(versionPos, true) : 0
  const typePos = fieldPos(v, root, 1)
  const type = typePos ? v.getUint8(typePos) : 0
  const bodyPos = fieldPos(v, root, 3)
  const bodyLength = bodyPos ? int64(v, bodyPos) : 0
  const h: MessageHeader = {
    type,
    bodyLength,
    plain: false,
    length: 0,
    nodeLengths: [],
    nodeNulls: [],
    bufOffsets: [],
    bufLengths: [],
  }
  if (type !== HEADER_RECORD_BATCH) return h
  const headerPos = fieldPos(v, root, 2)
  if (!headerPos) throw new Error('record batch message without a header')
  const rb = deref(v, headerPos)
  const lengthPos = fieldPos(v, rb, 0)
  h.length = lengthPos ? int64(v, lengthPos) : 0
  // FieldNode {length, null_count} and Buffer {offset, length}: both vectors of two-int64 structs
  readInt64Pairs(v, fieldPos(v, rb, 1), at + len, 'field nodes', h.nodeLengths, h.nodeNulls)
  readInt64Pairs(v, fieldPos(v, rb, 2), at + len, 'buffer list', h.bufOffsets, h.bufLengths)
  h.plain =
    version >= V4 &&
    fieldPos(v, root, 4) === 0 && // message custom metadata
    fieldPos(v, rb, 3) === 0 && // body compression
    fieldPos(v, rb, 4) === 0 // variadic buffer counts
  return h
}

/** A flatbuffer vector of 16-byte structs of two int64s at `pos` (absent: nothing), into `a` and `b`. */
function readInt64Pairs(
  v: DataView,
  pos: number | null | undefined,
  end: number,
  what: string,
  a: number[],
  b: number[],
): void {
  if (!pos) return
  const vec = deref(v, pos)
  const n = v.getUint32(vec, true)
  if (vec + 4 + 16 * n > end) throw new Error(`${what} out of range`)
  for (let i = 0; i < n; i++) {
    a.push(int64(v, vec + 4 + 16 * i))
    b.push(int64(v, vec + 12 + 16 * i))
  }
}

/** Where the numbers of a record-batch message lie in its flatbuffer (absolute byte positions). */
export interface RecordBatchSlots {
  bodyLength: number
  length: number
  /** First FieldNode struct {length, null_count} (16 bytes each, in order). */
  nodes: number
  /** First Buffer struct {offset, length} (16 bytes each, in order). */
  buffers: number
}

/**
 * The slots of a record-batch message whose fields are all present (a non-empty batch with a
 * non-empty body): what the lean encoder (ipc-lean-encode.ts) patches in a template message.
 */
export function recordBatchSlots(v: DataView, at: number): RecordBatchSlots {
  const root = at + v.getUint32(at, true)
  const rb = deref(v, fieldPos(v, root, 2))
  const vector = (pos: number) => deref(v, pos) + 4
  return {
    bodyLength: fieldPos(v, root, 3),
    length: fieldPos(v, rb, 0),
    nodes: vector(fieldPos(v, rb, 1)),
    buffers: vector(fieldPos(v, rb, 2)),
  }
}
