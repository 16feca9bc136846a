import {
  type Data,
  type DataType,
  type Field,
  FixedSizeList,
  List,
  RecordBatch,
  type Schema,
  Struct,
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

export function getString(batch: RecordBatch, name: string, row = 0): string | null {
  const v = batch.getChildAt(batch.schema.fields.findIndex((f) => f.name === name))
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

function scalarData(type: DataType, v: CellValue, name: string): Data {
  if (type instanceof Utf8) {
    if (v !== null && typeof v !== 'string') throw new KtpError('bad-value', `column '${name}' takes a string`)
    // built directly: vectorFromArray's builder costs ~0.5 ms per call, per utterance
    const bytes = v === null ? new Uint8Array(0) : UTF8.encode(v)
    return makeData({
      type,
      length: 1,
      nullCount: v === null ? 1 : 0,
      nullBitmap: v === null ? Uint8Array.of(0) : undefined,
      valueOffsets: Int32Array.of(0, bytes.length),
      data: bytes,
    } as never)
  }
  if (v !== null && typeof v !== 'number') throw new KtpError('bad-value', `column '${name}' takes a number`)
  const ArrayType = (type as unknown as { ArrayType: { of(...x: number[]): NumArray } }).ArrayType
  if (v === null) {
    return makeData({ type, length: 1, nullCount: 1, nullBitmap: Uint8Array.of(0), data: ArrayType.of(0) } as never)
  }
  return makeData({ type, length: 1, nullCount: 0, data: ArrayType.of(v) } as never)
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
    const values = makeData({ type: inner.children[0].type, length: v.length, nullCount: 0, data: v } as never)
    const fsl = makeData({ type: inner, length: frames, nullCount: 0, child: values } as never)
    return makeData({
      type: list,
      length: 1,
      nullCount: 0,
      valueOffsets: Int32Array.of(0, frames),
      child: fsl,
    } as never)
  }
  const values = makeData({ type: inner, length: v.length, nullCount: 0, data: v } as never)
  return makeData({
    type: list,
    length: 1,
    nullCount: 0,
    valueOffsets: Int32Array.of(0, v.length),
    child: values,
  } as never)
}

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
  const data = makeData({ type: new Struct(schema.fields), length: 1, nullCount: 0, children })
  return new RecordBatch(schema, data)
}

/** Split a batch into one-row batches (zero-copy slices): the unit ktp stages stream. */
export function* rowsOf(batch: RecordBatch): Generator<RecordBatch> {
  if (batch.numRows === 1) {
    yield batch
    return
  }
  for (let i = 0; i < batch.numRows; i++) yield batch.slice(i, i + 1)
}
