import t from 'tap'
import { RecordBatchReader, tableFromIPC } from 'apache-arrow'
import { makeSchema } from '../schemas/kinds.js'
import { makeUttBatch, uttId } from '../schemas/utterance.js'
import { BatchEncoder } from '../pipeline/io/arrow-encoder.js'

// A stream encoder must not keep anything per utterance (a `ktp features -o -` run encodes every
// utterance of the corpus with one encoder); a file encoder keeps the footer's list, as typed
// columns (arrow-footer.ts), not apache-arrow's object per batch.
const schema = makeSchema('labels', { metadata: { 'ktp.num_classes': '4' } })
const batches = Array.from({ length: 300 }, (_, i) =>
  makeUttBatch(schema, { utt: `u${i}`, labels: Int32Array.of(i % 4, 1) }),
)

function encodeAll(format: 'stream' | 'file'): { bytes: Buffer; blocks: number; typed: number } {
  const enc = new BatchEncoder(schema, format)
  const parts = [...enc.begin()]
  for (const b of batches) parts.push(...enc.encode(b))
  const writer = (enc as unknown as { writer: { _recordBatchBlocks: unknown[]; blocks?: { length: number } } }).writer
  const blocks = writer._recordBatchBlocks.length
  const typed = writer.blocks?.length ?? 0
  parts.push(...enc.finish())
  return { bytes: Buffer.concat(parts), blocks, typed }
}

t.test('stream encoder: no per-batch bookkeeping kept, every batch still written', async (t) => {
  const { bytes, blocks } = encodeAll('stream')
  t.equal(blocks, 0)
  const read = [...(RecordBatchReader.from(bytes) as unknown as Iterable<import('apache-arrow').RecordBatch>)]
  t.same(
    read.map((b) => uttId(b)),
    batches.map((_, i) => `u${i}`),
  )
})

t.test('file encoder: the footer lists every batch', async (t) => {
  const { bytes, blocks, typed } = encodeAll('file')
  t.equal(blocks, 0, 'no FileBlock objects')
  t.equal(typed, 300, 'one typed row per batch')
  t.same(
    tableFromIPC(bytes).batches.map((b) => uttId(b)),
    batches.map((_, i) => `u${i}`),
  )
})
