import {
  Data,
  type DataType,
  type Field,
  FixedSizeList,
  List,
  RecordBatch,
  type Schema,
  Struct,
  Type,
  Utf8,
  makeData,
} from 'apache-arrow'
import { KtpError } from './errors.js'

/**
 * Zero-copy access to, and construction of, utterance rows (docs/ARCHITECTURE.md §2). Streams between ktp
 * stages carry one utterance per record batch; these helpers also work on any row of a larger
 * batch (e.g. one written by pyarrow). Note on offsets: apache-arrow JS applies a slice to the
 * buffers themselves (`Data.offset` then only concerns the validity bitmap), so buffers are
 * indexed by row directly here; a test with sliced multi-row batches pins this down.
 */
export type NumArray = Float32Array | Float64Array | Int32Array | Uint16Array | Uint32Array

function columnData(batch: RecordBatch, name: string): Data {
  const i = batch.schema.fields.findIndex((f) => f.name === name)
  if (i < 0) throw new KtpError('no-column', `record batch has no column '${name}'`)
  return batch.data.children[i]
}

/** apache-arrow's own decoder settings (util/utf8): the strings are the ones Vector.get returns. */
const UTF8_DECODER = new TextDecoder('utf-8')

/**
 * A utf8 cell read from the column's buffers, as apache-arrow's Vector.get reads it, without the
 * Vector and visitor it builds per call: ids are read several times per utterance (input order,
 * the stage's task, the output's order and resume log).
 */
export function getString(batch: RecordBatch, name: string, row = 0): string | null {
  const i = batch.schema.fields.findIndex((f) => f.name === name)
  const d = i < 0 ? undefined : batch.data.children[i]
  if (d && d.type instanceof Utf8 && d.valueOffsets instanceof Int32Array) {
    if (!d.getValid(row)) return null
    const offsets = d.valueOffsets
    if (row + 1 >= offsets.length) return null
    return UTF8_DECODER.decode((d.values as Uint8Array).subarray(offsets[row], offsets[row + 1]))
  }
  const v = batch.getChildAt(i)
  if (!v) throw new KtpError('no-column', `record batch has no column '${name}'`)
  return (v.get(row) as string | null) ?? null
}

export function getNumber(batch: RecordBatch, name: string, row = 0): number | null {
  const d = columnData(batch, name)
  if (d.nullCount > 0 && !d.getValid(row)) return null
  return Number((d.values as NumArray)[row])
}

export function uttId(batch: RecordBatch, row = 0): string {
  const u = getString(batch, 'utt', row)
  if (u === null) throw new KtpError('null-utt', 'a row has a null utterance id')
  return u
}

export interface MatrixView<T extends NumArray = NumArray> {
  /** frames × width values, frame-major: a view into the batch's buffer, not a copy. */
  data: T
  frames: number
  width: number
}

/** The matrix of `name` for one row: a subarray view (f16 columns come back as raw Uint16Array). */
export function getMatrix<T extends NumArray = Float32Array>(batch: RecordBatch, name: string, row = 0): MatrixView<T> {
  const d = columnData(batch, name)
  if (!(d.type instanceof List)) throw new KtpError('wrong-columns', `column '${name}' is not a list`)
  const start = d.valueOffsets[row]
  const end = d.valueOffsets[row + 1]
  const fsl = d.children[0]
  if (!(fsl.type instanceof FixedSizeList)) throw new KtpError('wrong-columns', `column '${name}' is not a matrix`)
  const width = fsl.type.listSize
  const values = fsl.children[0]
  const from = start * width
  const data = (values.values as T).subarray(from, from + (end - start) * width) as T
  return { data, frames: end - start, width }
}

/** The per-frame vector of `name` for one row: a subarray view. */
export function getVector<T extends NumArray = Int32Array>(batch: RecordBatch, name: string, row = 0): T {
  const d = columnData(batch, name)
  if (!(d.type instanceof List)) throw new KtpError('wrong-columns', `column '${name}' is not a list`)
  const start = d.valueOffsets[row]
  const end = d.valueOffsets[row + 1]
  return (d.children[0].values as T).subarray(start, end) as T
}

/** Number of frames of one row, read from the first per-frame column. */
export function numFrames(batch: RecordBatch, row = 0): number {
  const i = batch.schema.fields.findIndex((f) => f.type instanceof List)
  if (i < 0) return 0
  const d = batch.data.children[i]
  return d.valueOffsets[row + 1] - d.valueOffsets[row]
}

const UTF8 = new TextEncoder()

export type CellValue = string | number | null | NumArray

/**
 * The Data nodes below are built with `new Data(...)` exactly as apache-arrow's makeData builds
 * them for these types (same buffers, lengths and null counts, an empty validity bitmap when
 * there are no nulls); makeData's per-node visitor dispatch and argument normalisation cost
 * microseconds per column, per utterance. Types other than Utf8, Int and Float still go through
 * makeData.
 */
const NO_NULLS = new Uint8Array(0)

/** Int and Float columns (not those stored as Uint8Array): the only numeric types built without makeData. */
function builtDirectly(type: DataType): boolean {
  const ArrayType = (type as unknown as { ArrayType: unknown }).ArrayType
  return (type.typeId === Type.Int || type.typeId === Type.Float) && ArrayType !== Uint8Array
}

/** Values given as the column's own array type are referenced as they are (makeData does too). */
function ownArray(type: DataType, v: NumArray): boolean {
  const ArrayType = (type as unknown as { ArrayType: unknown }).ArrayType
  return builtDirectly(type) && v instanceof (ArrayType as typeof Float32Array)
}

function scalarData(type: DataType, v: CellValue, name: string): Data {
  if (type instanceof Utf8) {
    if (v !== null && typeof v !== 'string') throw new KtpError('bad-value', `column '${name}' takes a string`)
    // built directly: vectorFromArray's builder costs ~0.5 ms per call, per utterance
    const bytes = v === null ? new Uint8Array(0) : UTF8.encode(v)
    const nulls = v === null ? Uint8Array.of(0) : NO_NULLS
    return new Data(type, 0, 1, v === null ? 1 : 0, [Int32Array.of(0, bytes.length), bytes, nulls] as never)
  }
  if (v !== null && typeof v !== 'number') throw new KtpError('bad-value', `column '${name}' takes a number`)
  const ArrayType = (type as unknown as { ArrayType: { of(...x: number[]): NumArray } }).ArrayType
  const values = ArrayType.of(v ?? 0)
  if (!builtDirectly(type)) {
    if (v === null)
      return makeData({ type, length: 1, nullCount: 1, nullBitmap: Uint8Array.of(0), data: values } as never)
    return makeData({ type, length: 1, nullCount: 0, data: values } as never)
  }
  return new Data(type, 0, 1, v === null ? 1 : 0, [
    undefined,
    values,
    v === null ? Uint8Array.of(0) : NO_NULLS,
  ] as never)
}

/** A column of `v.length` numbers (the values of a list). */
function valuesData(type: DataType, v: NumArray): Data {
  if (!ownArray(type, v)) return makeData({ type, length: v.length, nullCount: 0, data: v } as never)
  return new Data(type, 0, v.length, 0, [undefined, v, NO_NULLS] as never)
}

function listData(field: Field, v: CellValue): Data {
  const list = field.type as List
  const inner = list.children[0].type
  if (v === null || typeof v === 'string' || typeof v === 'number') {
    throw new KtpError('bad-value', `column '${field.name}' takes a typed array`)
  }
  if (inner instanceof FixedSizeList) {
    const width = inner.listSize
    if (v.length % width !== 0) {
      throw new KtpError(
        'bad-shape',
        `column '${field.name}': ${v.length} values is not a whole number of ${width}-wide frames`,
      )
    }
    const frames = v.length / width
    const values = valuesData(inner.children[0].type, v)
    const fsl = new Data(inner, 0, frames, 0, [undefined, undefined, NO_NULLS] as never, [values])
    return new Data(list, 0, 1, 0, [Int32Array.of(0, frames), undefined, NO_NULLS] as never, [fsl])
  }
  const values = valuesData(inner, v)
  return new Data(list, 0, 1, 0, [Int32Array.of(0, v.length), undefined, NO_NULLS] as never, [values])
}

/** Per schema: the struct type of its rows (one per schema, not one per utterance). */
const structs = new WeakMap<Schema, Struct>()

/**
 * One utterance as a one-row record batch of `schema`. Typed arrays are referenced, not copied:
 * the caller must not reuse them afterwards.
 */
export function makeUttBatch(schema: Schema, row: Record<string, CellValue>): RecordBatch {
  const children = schema.fields.map((f) => {
    const v = row[f.name] ?? null
    if (v === null && !f.nullable) throw new KtpError('bad-value', `column '${f.name}' may not be null`)
    return f.type instanceof List ? listData(f, v) : scalarData(f.type, v, f.name)
  })
  let struct = structs.get(schema)
  if (!struct) {
    struct = new Struct(schema.fields)
    structs.set(schema, struct)
  }
  const data = new Data(struct, 0, 1, 0, [undefined, undefined, NO_NULLS] as never, children)
  // Every column is one row long, so the constructor's ensureSameLengthData would only copy the
  // schema (cloning each field) and rebuild the struct node, per utterance: the fields are set
  // as it would leave them (as ipc-lean-batch.ts does for decoded batches).
  const batch = Object.create(RecordBatch.prototype) as RecordBatch & { _metadata: Map<string, string> }
  Object.assign(batch, { schema, data, _metadata: new Map() })
  return batch
}

/** Split a batch into one-row batches (zero-copy slices): the unit ktp stages stream. */
export function* rowsOf(batch: RecordBatch): Generator<RecordBatch> {
  if (batch.numRows === 1) {
    yield batch
    return
  }
  for (let i = 0; i < batch.numRows; i++) yield batch.slice(i, i + 1)
}
