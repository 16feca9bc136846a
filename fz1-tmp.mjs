import { writeFileSync } from 'node:fs'
import { openArrow } from '/work/main/dist/pipeline/arrow-source.js'
import { puller } from '/work/main/dist/pipeline/pull.js'
import { makeSchema } from '/work/main/dist/schemas/kinds.js'
import { makeUttBatch } from '/work/main/dist/schemas/utterance.js'
import { BatchEncoder } from '/work/main/dist/pipeline/arrow-encoder.js'
const schema = makeSchema('features', { widths: { feats: 5 }, metadata: { 'ktp.fingerprint': 'test-fingerprint' } })
const enc = new BatchEncoder(schema, 'file')
const parts = [...enc.begin()]
for (let i = 0; i < 4; i++) parts.push(...enc.encode(makeUttBatch(schema, { utt: `utt0000${i}`, feats: new Float32Array((3 + i) * 5).fill(i) })))
parts.push(...enc.finish())
const b = Buffer.concat(parts)
for (const [p, v] of JSON.parse(process.argv[2])) b[p] = v
writeFileSync('/tmp/ktp-fz/f1.arrow', b)
const a = await openArrow('/tmp/ktp-fz/f1.arrow', ['features'])
console.log('opened')
const next = puller(a.stream())
for (let x = await next(); x; x = await next()) console.log('row', x.numRows)
