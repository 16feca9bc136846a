import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import {
  type Data,
  type Field,
  FixedSizeList,
  type List,
  RecordBatch,
  RecordBatchStreamWriter,
  type Schema,
  Struct,
  Utf8,
  makeData,
  tableFromIPC,
} from 'apache-arrow'
import { compressionRegistry } from 'apache-arrow/ipc/compression/registry'
import { CompressionType } from 'apache-arrow/fb/compression-type'
import { makeSchema } from '../schemas/kinds.js'
import { type CellValue, type NumArray, getMatrix, makeUttBatch, rowsOf } from '../schemas/utterance.js'
import { BatchEncoder, type IpcFormat } from '../pipeline/io/arrow-encoder.js'
import { openArrowBlocks } from '../pipeline/io/arrow-blocks.js'
import { freeBodyBytes, giveBody } from '../pipeline/io/body-pool.js'
import { inferSchema } from '../stages/infer/stage.js'
import { encodeF16 } from '../schemas/float16.js'
import { rng, tmp } from './helpers.js'

/**
 * The block reader decodes the record batches of ktp's column types itself (ipc-lean-batch.ts):
 * every column of every utterance must be what apache-arrow's own reader gives for the same file.
 */
type Row = Record<string, CellValue>

const dir = tmp('ktp-arrow-blocks-')
const r = rng(7)
const rand = (n: number, scale = 1) => Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale)
// 4000 frames: bodies of ≥ 64 KB, read straight from the file rather than through the block buffer
const lengths = [3, 1, 17, 0, 250, 4000, 2]
const C = 12
const K = 4

function softSchema(topK: number, dtype: 'f16' | 'f32'): Schema {
  const meta = { numClasses: C, fingerprint: 'teacher', inventory: null, priors: null } as never
  return inferSchema(meta, { topK, dtype } as never, 'feats-fp')
}

const kinds: { name: string; kind: string; schema: Schema; row: (utt: string, frames: number) => Row }[] = [
  {
    name: 'features',
    kind: 'features',
    schema: makeSchema('features', { widths: { feats: 5 } }),
    row: (utt, n) => ({ utt, feats: rand(n * 5) }),
  },
  {
    name: 'labels',
    kind: 'labels',
    schema: makeSchema('labels', { metadata: { 'ktp.num_classes': String(C) } }),
    row: (utt, n) => ({ utt, labels: Int32Array.from({ length: n }, () => Math.floor(r() * C)) }),
  },
  {
    name: 'dense-f32',
    kind: 'soft-dense',
    schema: softSchema(0, 'f32'),
    row: (utt, n) => ({ utt, logp: rand(n * C, 5) }),
  },
  {
    name: 'dense-f16',
    kind: 'soft-dense',
    schema: softSchema(0, 'f16'),
    row: (utt, n) => ({ utt, logp: encodeF16(rand(n * C, 5)) }),
  },
  {
    name: 'top4-f16',
    kind: 'soft-topk',
    schema: softSchema(K, 'f16'),
    row: (utt, n) => ({
      utt,
      ids: Uint16Array.from({ length: n * K }, () => Math.floor(r() * C)),
      logp: encodeF16(rand(n * K, 5)),
      tail: rand(n),
    }),
  },
]

/** Several rows as one record batch (as pyarrow or a batching writer would write them). */
function multiRowBatch(schema: Schema, rows: Row[]): RecordBatch {
  const children = schema.fields.map((f: Field): Data => {
    const cells = rows.map((row) => row[f.name])
    if (f.type instanceof Utf8) {
      const bytes = cells.map((c) => Buffer.from(c as string))
      const offsets = Int32Array.from([
        0,
        ...bytes.map((_, i) => bytes.slice(0, i + 1).reduce((a, b) => a + b.length, 0)),
      ])
      return makeData({ type: f.type, length: rows.length, valueOffsets: offsets, data: Buffer.concat(bytes) })
    }
    const inner = (f.type as List).children[0].type
    const width = inner instanceof FixedSizeList ? inner.listSize : 1
    const arrays = cells as NumArray[]
    const counts = arrays.map((a) => a.length / width)
    const offsets = Int32Array.from([0, ...counts.map((_, i) => counts.slice(0, i + 1).reduce((a, b) => a + b, 0))])
    const total = arrays.reduce((a, b) => a + b.length, 0)
    const all = new (arrays[0].constructor as new (n: number) => NumArray)(total)
    let at = 0
    for (const a of arrays) {
      all.set(a as never, at)
      at += a.length
    }
    const elem = inner instanceof FixedSizeList ? inner.children[0].type : inner
    let child: Data = makeData({ type: elem, length: total, data: all } as never)
    if (inner instanceof FixedSizeList) child = makeData({ type: inner, length: total / width, child })
    return makeData({ type: f.type as List, length: rows.length, valueOffsets: offsets, child })
  })
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: rows.length, children }))
}

function write(path: string, schema: Schema, batches: RecordBatch[], format: IpcFormat): void {
  const enc = new BatchEncoder(schema, format)
  const parts: Uint8Array[] = [...enc.begin()]
  for (const b of batches) parts.push(...enc.encode(b))
  parts.push(...enc.finish())
  writeFileSync(path, Buffer.concat(parts))
}

/** Every column of every row, as plain values: the row's Data fields that consumers read. */
function dump(batch: RecordBatch): unknown {
  const columns = batch.schema.fields.map((f, i) => {
    const d = batch.data.children[i]
    if (f.type instanceof Utf8) return [d.nullCount, batch.getChildAt(i)!.get(0)]
    const start = d.valueOffsets[0]
    const end = d.valueOffsets[1]
    const fsl = d.children[0]
    const width = fsl.type instanceof FixedSizeList ? fsl.type.listSize : 1
    const values = (fsl.type instanceof FixedSizeList ? fsl.children[0] : fsl).values as NumArray
    return [
      d.nullCount,
      d.type.toString(),
      end - start,
      values.constructor.name,
      Array.from(values.subarray(start * width, end * width)),
    ]
  })
  return { rows: batch.numRows, columns }
}

function arrowRows(path: string): unknown[] {
  return tableFromIPC(readFileSync(path)).batches.flatMap((b) => [...rowsOf(b)].map(dump))
}

function leanRows(path: string, accept: string): { rows: unknown[]; lean: number; arrow: number } {
  const blocks = openArrowBlocks(path, [accept], 256) // small blocks: messages straddle block ends
  const rows: unknown[] = []
  for (let b = blocks.next(); b; b = blocks.next()) rows.push(dump(b))
  blocks.close()
  return { rows, ...blocks.decoded }
}

for (const k of kinds) {
  const accept = k.kind
  const rows = lengths.map((n, i) => k.row(`utt-${k.name}-${i}`, n))
  for (const format of ['file', 'stream'] as const) {
    t.test(`${k.name} (${format}): the lean decoder gives apache-arrow's values`, async (t) => {
      const one = join(dir, `${k.name}-one.${format}`)
      write(
        one,
        k.schema,
        rows.map((row) => makeUttBatch(k.schema, row)),
        format,
      )
      const got = leanRows(one, accept)
      t.same(got.rows, arrowRows(one))
      t.equal(got.rows.length, lengths.length)
      t.same([got.lean, got.arrow], [lengths.length, 0], 'every batch decoded by the lean path')

      const multi = join(dir, `${k.name}-multi.${format}`)
      write(
        multi,
        k.schema,
        [multiRowBatch(k.schema, rows.slice(0, 4)), multiRowBatch(k.schema, rows.slice(4))],
        format,
      )
      const many = leanRows(multi, accept)
      t.same(many.rows, arrowRows(multi), 'batches of several utterances come back one utterance at a time')
      t.same(many.rows, got.rows)
      t.same([many.lean, many.arrow], [2, 0])

      if (k.name === 'features') {
        // an utterance's body goes back to the pool (body-pool.ts) only when it is that utterance's alone
        const given = (path: string) => {
          const blocks = openArrowBlocks(path, [accept])
          const before = freeBodyBytes()
          for (let b = blocks.next(); b; b = blocks.next()) giveBody(getMatrix(b, 'feats').data.buffer)
          blocks.close()
          return freeBodyBytes() - before
        }
        t.ok(given(one) > 0, 'one utterance a batch: its (large) body is taken back')
        t.equal(given(multi), 0, 'several utterances a batch: their shared body is never taken back')
      }

      const empty = join(dir, `${k.name}-empty.${format}`)
      write(empty, k.schema, [], format)
      t.same(leanRows(empty, accept).rows, [])
    })
  }
}

t.test('compressed bodies go to apache-arrow', async (t) => {
  // a stand-in zstd codec (zstd's magic + the bytes): this is about which decoder runs, not zstd
  const MAGIC = [40, 181, 47, 253, 0, 0]
  compressionRegistry.set(CompressionType.ZSTD, {
    encode: (d: Uint8Array) => Uint8Array.from([...MAGIC, ...d]),
    decode: (d: Uint8Array) => d.slice(MAGIC.length),
  })
  t.teardown(() => compressionRegistry.set(CompressionType.ZSTD, null as never))
  const k = kinds[4]
  const rows = lengths.map((n, i) => makeUttBatch(k.schema, k.row(`z${i}`, n)))
  const path = join(dir, 'compressed.stream')
  const w = new RecordBatchStreamWriter({ compressionType: CompressionType.ZSTD } as never)
  w.reset(undefined, k.schema)
  for (const b of rows) w.write(b)
  w.finish()
  writeFileSync(path, w.toUint8Array(true))
  const got = leanRows(path, 'soft-topk')
  t.same(got.rows, arrowRows(path))
  t.same(got.rows, rows.map(dump))
  t.same([got.lean, got.arrow], [0, lengths.length])
})
