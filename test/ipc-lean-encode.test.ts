import t from 'tap'
import {
  type Data,
  Field,
  FixedSizeList,
  Float32,
  Float64,
  Int32,
  List,
  RecordBatch,
  RecordBatchFileWriter,
  RecordBatchStreamWriter,
  Schema,
  Struct,
  Utf8,
  makeData,
} from 'apache-arrow'
import { makeSchema } from '../schemas/kinds.js'
import { type CellValue, type NumArray, makeUttBatch, rowsOf } from '../schemas/utterance.js'
import { BatchEncoder, type IpcFormat } from '../pipeline/io/arrow-encoder.js'
import { LeanEncoder } from '../pipeline/io/ipc-lean-encode.js'

/**
 * The lean encoder (ipc-lean-encode.ts) and makeUttBatch's direct Data construction must give
 * the bytes apache-arrow gives: every file below is encoded both ways and compared byte for byte,
 * in stream and file format, against batches built the way makeUttBatch built them before (with
 * makeData and the RecordBatch constructor) and written by apache-arrow's own writers.
 */
type Row = Record<string, CellValue>

let seed = 11
const rand = () => {
  seed = (seed * 1103515245 + 12345) >>> 0
  return seed / 4294967296
}
const floats = (n: number) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * 100)
// ids whose UTF-8 lengths cover every padding remainder, and non-ASCII
const ids = ['', 'a', 'ab', 'abc', 'utt-0004', 'ütt-é5', 'long_utterance_id_of_many_bytes_0123456789', '日本語']
const frames = [0, 1, 2, 3, 7, 8, 9, 100]

/** makeUttBatch as it was: makeData for every node, then the RecordBatch constructor. */
function referenceBatch(schema: Schema, row: Row): RecordBatch {
  const children = schema.fields.map((f): Data => {
    const v = row[f.name] ?? null
    if (f.type instanceof Utf8) {
      const bytes = v === null ? new Uint8Array(0) : new TextEncoder().encode(v as string)
      return makeData({
        type: f.type,
        length: 1,
        nullCount: v === null ? 1 : 0,
        nullBitmap: v === null ? Uint8Array.of(0) : undefined,
        valueOffsets: Int32Array.of(0, bytes.length),
        data: bytes,
      } as never)
    }
    if (f.type instanceof List) {
      const inner = f.type.children[0].type
      const a = v as NumArray
      if (inner instanceof FixedSizeList) {
        const values = makeData({ type: inner.children[0].type, length: a.length, nullCount: 0, data: a } as never)
        const fsl = makeData({ type: inner, length: a.length / inner.listSize, nullCount: 0, child: values } as never)
        return makeData({
          type: f.type,
          length: 1,
          nullCount: 0,
          valueOffsets: Int32Array.of(0, fsl.length),
          child: fsl,
        })
      }
      const values = makeData({ type: inner, length: a.length, nullCount: 0, data: a } as never)
      return makeData({
        type: f.type,
        length: 1,
        nullCount: 0,
        valueOffsets: Int32Array.of(0, a.length),
        child: values,
      })
    }
    const A = (f.type as unknown as { ArrayType: { of(...x: number[]): NumArray } }).ArrayType
    if (v === null)
      return makeData({ type: f.type, length: 1, nullCount: 1, nullBitmap: Uint8Array.of(0), data: A.of(0) } as never)
    return makeData({ type: f.type, length: 1, nullCount: 0, data: A.of(v as number) } as never)
  })
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: 1, nullCount: 0, children }))
}

function viaArrow(batches: RecordBatch[], format: IpcFormat): Buffer {
  const W = format === 'file' ? RecordBatchFileWriter : RecordBatchStreamWriter
  return Buffer.from(W.writeAll(batches).toUint8Array(true))
}

/** Whether the last viaEncoder run kept lean encoding on (its first lean message matched). */
let leanUsed = false

function viaEncoder(schema: Schema, batches: RecordBatch[], format: IpcFormat): Buffer {
  const enc = new BatchEncoder(schema, format)
  const parts = [...enc.begin()]
  for (const b of batches) parts.push(...enc.encode(b))
  parts.push(...enc.finish())
  const state = enc as unknown as { lean: unknown; leanChecked: boolean }
  leanUsed = state.lean !== null && state.leanChecked
  return Buffer.concat(parts)
}

const mixed = new Schema([
  new Field('utt', new Utf8(), false),
  new Field('n', new Int32(), true),
  new Field('x', new Float64(), true),
  new Field('v', new List(new Field('item', new Float32(), false)), false),
  new Field(
    'm',
    new List(new Field('item', new FixedSizeList(3, new Field('item', new Int32(), false)), false)),
    false,
  ),
])

const cases: { name: string; schema: Schema; row: (i: number) => Row }[] = [
  {
    name: 'features',
    schema: makeSchema('features', { widths: { feats: 5 } }),
    row: (i) => ({ utt: ids[i % ids.length], feats: floats(5 * frames[i % frames.length]) }),
  },
  {
    name: 'labels',
    schema: makeSchema('labels', { metadata: { 'ktp.num_classes': '7' } }),
    row: (i) => ({
      utt: ids[(i * 3) % ids.length],
      labels: Int32Array.from({ length: frames[i % 8] }, (_, k) => k % 7),
    }),
  },
  {
    name: 'manifest (nulls: apache-arrow encodes those rows)',
    schema: makeSchema('manifest'),
    row: (i) => ({
      utt: `u${i}`,
      speaker: ids[i % ids.length],
      audio: `/data/${ids[(i + 1) % ids.length]}.wav`,
      channel: i % 3 === 0 ? null : i % 3,
      start: i % 2 ? 0.25 * i : null,
      end: i % 2 ? 0.25 * i + 1 : null,
      text: i % 4 === 0 ? null : 'some words',
    }),
  },
  {
    name: 'mixed columns',
    schema: mixed,
    row: (i) => ({
      utt: ids[i % ids.length],
      n: i % 5 === 0 ? null : i - 20,
      x: rand(),
      v: floats(frames[(i + 3) % 8]),
      m: Int32Array.from({ length: 3 * frames[i % 8] }, (_, k) => k - i),
    }),
  },
]

for (const c of cases) {
  t.test(`${c.name}: the bytes apache-arrow writes, stream and file`, async (t) => {
    const rows = Array.from({ length: 40 }, (_, i) => c.row(i))
    const mine = rows.map((r) => makeUttBatch(c.schema, r))
    const reference = rows.map((r) => referenceBatch(c.schema, r))
    for (const format of ['stream', 'file'] as const) {
      const want = viaArrow(reference, format)
      t.ok(viaArrow(mine, format).equals(want), `${format}: makeUttBatch's batches encode as before`)
      t.ok(viaEncoder(c.schema, mine, format).equals(want), `${format}: BatchEncoder (lean) bytes`)
      t.ok(leanUsed, `${format}: lean encoding was on`)
    }
  })
}

t.test('the lean encoder takes batches without nulls and leaves the rest to apache-arrow', async (t) => {
  const lean = LeanEncoder.for(mixed)!
  t.ok(lean)
  const full = { utt: 'a', n: 1, x: 2, v: floats(4), m: new Int32Array(6) }
  t.ok(lean.encode(makeUttBatch(mixed, full)), 'no nulls: lean')
  t.equal(lean.encode(makeUttBatch(mixed, { ...full, n: null })), null, 'a null: apache-arrow')
  const manifest = makeSchema('manifest')
  t.ok(LeanEncoder.for(manifest), 'manifest columns are lean types')
  t.equal(LeanEncoder.for(new Schema([new Field('s', new Struct([]), false)])), null, 'a struct column is not')
})

t.test('rows sliced out of a multi-row batch: same bytes (apache-arrow encodes them)', async (t) => {
  const schema = makeSchema('labels', { metadata: { 'ktp.num_classes': '7' } })
  const batches = [0, 1, 2].map((i) =>
    makeUttBatch(schema, { utt: `u${i}`, labels: Int32Array.from({ length: 3 + i }, (_, k) => k) }),
  )
  // one 3-row batch, built like pyarrow would, then cut into one-row slices
  const utt = makeData({
    type: new Utf8(),
    length: 3,
    valueOffsets: Int32Array.of(0, 2, 4, 6),
    data: new TextEncoder().encode('u0u1u2'),
  })
  const values = makeData({ type: new Int32(), length: 12, data: Int32Array.of(0, 1, 2, 0, 1, 2, 3, 0, 1, 2, 3, 4) })
  const labels = makeData({
    type: schema.fields[1].type as List,
    length: 3,
    valueOffsets: Int32Array.of(0, 3, 7, 12),
    child: values,
  })
  const multi = new RecordBatch(
    schema,
    makeData({ type: new Struct(schema.fields), length: 3, children: [utt, labels] }),
  )
  const slices = [...rowsOf(multi)]
  t.equal(LeanEncoder.for(schema)!.encode(slices[1]), null, 'a slice is not lean')
  for (const format of ['stream', 'file'] as const) {
    t.ok(viaEncoder(schema, slices, format).equals(viaArrow(slices, format)), `${format}: slices`)
    t.ok(viaEncoder(schema, slices, format).equals(viaEncoder(schema, batches, format)), `${format}: as whole rows`)
  }
})
