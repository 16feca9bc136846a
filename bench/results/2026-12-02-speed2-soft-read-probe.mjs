// usage: node probe.mjs DIST mode(top8-f16|dense-f16) what(chunks|read) reps
const [dist, storage, what, repsS] = process.argv.slice(2)
const { writeSoftFiles, SOFT_MODES } = await import(`${dist}/bench/soft-read.js`)
const { writeRandomFeatures, uttLengths } = await import(`${dist}/bench/common.js`)
const { readCorpus } = await import(`${dist}/stages/train/corpus.js`)
const { chunkBatches } = await import(`${dist}/stages/train/chunk-batches.js`)
const { mulberry32 } = await import(`${dist}/stages/nn/init.js`)
const { TEACHER } = await import(`${dist}/bench/common.js`)
import { mkdtempSync } from 'node:fs'
import { join } from 'node:path'
const dir = mkdtempSync('/tmp/speed2-scratch/d-')
const lengths = uttLengths(20000, 5)
const feats = join(dir, 'feats.arrow')
const frames = writeRandomFeatures(feats, lengths, TEACHER.featDim, { seed: 2 })
const C = TEACHER.classes
let sparse = false
const files = writeSoftFiles(dir, lengths, C, SOFT_MODES.filter((m) => m.storage === storage || (process.env.PRE && m.storage === process.env.PRE)))
let soft = files.get(storage)
if (process.env.PRE) { const keep = soft; soft = files.get(process.env.PRE); for (let i = 0; i < 8; i++) await run(); soft = keep }
sparse = storage.startsWith('top')
async function run() {
  const t0 = process.hrtime.bigint(); const c0 = process.cpuUsage()
  let n = 0
  if (what === 'read') { for await (const u of readCorpus({ feats, soft })) n += u.frames }
  else for await (const b of chunkBatches(readCorpus({ feats, soft }), { chunksPerBatch: 16, chunkLength: 20, bufferChunks: 4096, delay: 0, rand: mulberry32(3), hard: false, soft: true, temperature: 2, numClasses: C, sparse, reuse: true })) n += b.frames
  const c = process.cpuUsage(c0)
  return { s: Number(process.hrtime.bigint() - t0) / 1e9, cpu: (c.user + c.system) / 1e6, n }
}
await run()
const res = []
for (let i = 0; i < Number(repsS); i++) res.push(await run())
const best = Math.min(...res.map((r) => r.s)), bestCpu = Math.min(...res.map((r) => r.cpu))
console.log(JSON.stringify({ dist: dist.split('/').pop(), storage, what, frames, fps_wall: Math.round(frames / best), fps_cpu: Math.round(frames / bestCpu), runs: res.map((r) => +r.s.toFixed(4)) }))
