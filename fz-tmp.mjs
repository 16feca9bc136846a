import { writeFileSync, appendFileSync } from 'node:fs'
import { RecordBatchReader, RecordBatchStreamWriter } from 'apache-arrow'
import { openArrow } from '/work/main/dist/pipeline/arrow-source.js'
import { puller } from '/work/main/dist/pipeline/pull.js'
import { uttId, getMatrix } from '/work/main/dist/schemas/utterance.js'
import { makeSchema } from '/work/main/dist/schemas/kinds.js'
import { makeUttBatch } from '/work/main/dist/schemas/utterance.js'
import { BatchEncoder } from '/work/main/dist/pipeline/arrow-encoder.js'
const schema = makeSchema('features', { widths: { feats: 5 }, metadata: { 'ktp.fingerprint': 'test-fingerprint' } })
const enc = new BatchEncoder(schema, 'file')
const parts = [...enc.begin()]
for (let i = 0; i < 4; i++) parts.push(...enc.encode(makeUttBatch(schema, { utt: `utt0000${i}`, feats: new Float32Array((3 + i) * 5).fill(i) })))
parts.push(...enc.finish())
const fileB = Buffer.concat(parts)
const streamB = Buffer.from(RecordBatchStreamWriter.writeAll([...RecordBatchReader.from(fileB)]).toUint8Array(true))
let s = 12345
const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648
for (let k = 0; k < 6000; k++) {
  const base = k % 2 ? streamB : fileB
  const b = Buffer.from(base)
  const edits = []
  const ne = 1 + Math.floor(rnd() * 3)
  for (let e = 0; e < ne; e++) { const pos = Math.floor(rnd() * b.length), byte = [0, 255, 127, 128, Math.floor(rnd() * 256)][Math.floor(rnd() * 5)]; b[pos] = byte; edits.push([pos, byte]) }
  writeFileSync('/tmp/ktp-fz/last.json', JSON.stringify({ k, fmt: k % 2 ? 'stream' : 'file', edits }))
  writeFileSync('/tmp/ktp-fz/f.arrow', b)
  const t0 = Date.now()
  try {
    const a = await openArrow('/tmp/ktp-fz/f.arrow', ['features'])
    const next = puller(a.stream())
    for (let x = await next(); x; x = await next()) { uttId(x); getMatrix(x, 'feats') }
  } catch (e) { if (!['KtpError', 'UttError'].includes(e.constructor.name)) { console.log('UNTYPED', k, e.constructor.name, e.message); } }
  if (Date.now() - t0 > 1000) console.log('SLOW', k, Date.now() - t0, JSON.stringify(edits))
}
console.log('done')
