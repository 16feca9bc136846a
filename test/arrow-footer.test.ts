import t from 'tap'
import { MetadataVersion, RecordBatchFileWriter } from 'apache-arrow'
import { Footer } from 'apache-arrow/ipc/metadata/file'
import { makeSchema } from '../schemas/kinds.js'
import { makeUttBatch } from '../schemas/utterance.js'
import { BatchEncoder } from '../pipeline/io/arrow-encoder.js'
import { FileBlocks, sameFooterAsArrow } from '../pipeline/io/arrow-footer.js'
import { rng } from './helpers.js'

// The footer written from typed columns must be apache-arrow's Footer.encode, byte for byte.
const schemas = {
  features: makeSchema('features', { widths: { feats: 40 } }),
  manifest: makeSchema('manifest', { metadata: { 'ktp.fingerprint': 'abc' } }),
  labels: makeSchema('labels', { metadata: { 'ktp.num_classes': '1000' } }),
}

t.test('encodeFooter gives the bytes of apache-arrow Footer.encode', async (t) => {
  const r = rng(5)
  for (const [name, schema] of Object.entries(schemas)) {
    t.ok(sameFooterAsArrow(schema), `${name}: the check passes`)
    for (const n of [0, 1, 2, 1023, 1024, 1025, 5000]) {
      const blocks = new FileBlocks()
      let at = 8 + Math.floor(r() * 64) * 8
      // positions past 2^32 and 2^40 (a file of TBs), bodies past 2^31 and of 0 bytes
      if (n === 5000) at = 2 ** 40 - 4096
      for (let i = 0; i < n; i++) {
        const meta = 8 * (20 + Math.floor(r() * 40))
        const body = i % 97 === 0 ? 0 : i % 89 === 0 ? 2 ** 31 + 8 * i : 8 * Math.floor(r() * 50_000)
        blocks.push(at, meta, body)
        at += meta + body
      }
      t.equal(blocks.length, n)
      const ours = Buffer.from(blocks.encodeFooter(schema))
      const arrow = Buffer.from(Footer.encode(new Footer(schema, MetadataVersion.V5, blocks.toFileBlocks(), [])))
      t.ok(ours.equals(arrow), `${name}, ${n} blocks: ${ours.length} bytes, the same`)
    }
  }
})

t.test('the footer reads back as the blocks that were pushed', async (t) => {
  const blocks = new FileBlocks()
  const want: [number, number, number][] = []
  for (let i = 0; i < 3000; i++) {
    const row: [number, number, number] = [2 ** 33 + i * 1000, 200 + (i % 9) * 8, i * 16]
    want.push(row)
    blocks.push(...row)
  }
  const decoded = Footer.decode(blocks.encodeFooter(schemas.features))
  const got = [...decoded.recordBatches()].map((b) => [b.offset, b.metaDataLength, b.bodyLength])
  t.same(got, want)
})

t.test("a footer layout that differs from apache-arrow's falls back to apache-arrow's encoder", async (t) => {
  // a fresh schema object: the check is made (and remembered) once per schema
  const schema = makeSchema('features', { widths: { feats: 3 } })
  const batches = Array.from({ length: 40 }, (_, i) =>
    makeUttBatch(schema, { utt: `u${i}`, feats: Float32Array.from({ length: 3 * (i % 5) }, (_, k) => k - i) }),
  )
  const encodeFooter = FileBlocks.prototype.encodeFooter
  // as if a future apache-arrow laid footers out otherwise: ours no longer matches
  FileBlocks.prototype.encodeFooter = function (this: FileBlocks, s) {
    const b = encodeFooter.call(this, s)
    b[b.length - 1] ^= 1
    return b
  }
  let ours: Buffer
  try {
    t.notOk(sameFooterAsArrow(schema), 'the check sees the difference')
    const enc = new BatchEncoder(schema, 'file')
    const parts = [...enc.begin()]
    for (const b of batches) parts.push(...enc.encode(b))
    parts.push(...enc.finish())
    ours = Buffer.concat(parts)
  } finally {
    FileBlocks.prototype.encodeFooter = encodeFooter
  }
  const arrow = Buffer.from(RecordBatchFileWriter.writeAll(batches).toUint8Array(true))
  t.ok(ours.equals(arrow), "the file is apache-arrow's, byte for byte")
})
