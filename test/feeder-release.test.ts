// The feeders hand the utterances they are done with back to readCorpus, whose file buffers then
// serve later reads (pipeline/io/body-pool.ts, issue 16). Recycled memory must change nothing: the
// batches of a streamed pass — buffers reused within it and across epochs — are bit for bit those of
// the same utterances held in arrays of their own (the path before the pool, which never releases).
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import t from 'tap'
import { freeBodyBytes, giveBody, reusedBodies, shareBody, takeBody } from '../pipeline/io/body-pool.js'
import { writeSoftFiles } from '../bench/soft-read.js'
import { writeRandomFeatures } from '../bench/common.js'
import { type CorpusUtt, readCorpus } from '../stages/train/corpus.js'
import { loadCorpus } from '../stages/train/corpus-memory.js'
import { chunkBatches } from '../stages/train/chunk-batches.js'
import { frameBatches } from '../stages/train/frame-batches.js'
import { epochRandom } from '../stages/train/shuffle.js'
import { tmp } from './helpers.js'

const D = tmp('ktp-feeder-release-')
const C = 40
const DIM = 24
// 60 utterances of 30–89 frames: dense f16 bodies of 2.4–7 KB, feature bodies of 2.9–8.5 KB
const LENGTHS = Array.from({ length: 60 }, (_, i) => 30 + ((i * 37) % 60))
const FEATS = join(D, 'feats.arrow')
writeRandomFeatures(FEATS, LENGTHS, DIM, { seed: 4 })
const SOFT = writeSoftFiles(D, LENGTHS, C, [
  { storage: 'dense-f16', topK: 0, dtype: 'f16' },
  { storage: 'dense-f32', topK: 0, dtype: 'f32' },
  { storage: 'top5-f16', topK: 5, dtype: 'f16' },
])

async function* plain(utts: CorpusUtt[]): AsyncGenerator<CorpusUtt> {
  yield* utts // no `release`: nothing goes back to the pool
}

type Feeder = (utts: AsyncIterable<CorpusUtt>, epoch: number) => AsyncIterable<Record<string, unknown>>

/** Every batch's arrays, in order, as one digest (and the number of batches). */
async function digest(batches: AsyncIterable<Record<string, unknown>>): Promise<string> {
  const h = createHash('sha256')
  let n = 0
  for await (const b of batches) {
    n++
    for (const v of [b.x, b.mask, b.soft, b.sparse && (b.sparse as { probs: Float32Array }).probs]) {
      if (v instanceof Float32Array) h.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength))
    }
    const sp = b.sparse as { ids: Int32Array; rest: Float32Array } | undefined
    if (sp) h.update(new Uint8Array(sp.ids.buffer, sp.ids.byteOffset, sp.ids.byteLength))
    if (sp) h.update(new Uint8Array(sp.rest.buffer, sp.rest.byteOffset, sp.rest.byteLength))
  }
  return `${n} batches ${h.digest('hex')}`
}

const chunks =
  (sparse: boolean): Feeder =>
  (utts, epoch) =>
    chunkBatches(utts, {
      chunksPerBatch: 3,
      chunkLength: 7,
      bufferChunks: 20, // many buffers a pass: utterances go back while later ones are read
      delay: 2,
      rand: epochRandom(9, epoch),
      hard: false,
      soft: true,
      temperature: 2,
      numClasses: C,
      sparse,
      reuse: true,
    }) as AsyncIterable<Record<string, unknown>>

const frames =
  (sparse: boolean): Feeder =>
  (utts, epoch) =>
    frameBatches(utts, {
      batchSize: 32,
      bufferFrames: 300,
      left: 2,
      right: 2,
      rand: epochRandom(9, epoch),
      hard: false,
      soft: true,
      temperature: 2,
      numClasses: C,
      sparse,
      reuse: true,
    }) as AsyncIterable<Record<string, unknown>>

const cases: [string, string, Feeder][] = [
  ['chunks, dense f16', 'dense-f16', chunks(false)],
  ['chunks, dense f32', 'dense-f32', chunks(false)],
  ['chunks, top-k sparse', 'top5-f16', chunks(true)],
  ['chunks, top-k dense', 'top5-f16', chunks(false)],
  ['frames, dense f16', 'dense-f16', frames(false)],
  ['frames, top-k sparse', 'top5-f16', frames(true)],
]

for (const [name, storage, feeder] of cases) {
  t.test(`${name}: streamed batches with recycled buffers = batches of utterances held apart`, async (t) => {
    const soft = SOFT.get(storage)!
    const held = await loadCorpus({ feats: FEATS, soft }) // copies: no pool buffer behind them
    for (const epoch of [0, 1, 2]) {
      const reused = reusedBodies()
      const streamed = await digest(feeder(readCorpus({ feats: FEATS, soft }), epoch))
      t.ok(reusedBodies() - reused > 40, `epoch ${epoch}: reads took released buffers`)
      t.equal(streamed, await digest(feeder(plain(held), epoch)), `epoch ${epoch}: the same batches`)
    }
  })
}

t.test('a consumer that keeps its utterances: nothing released, nothing overwritten', async (t) => {
  const soft = SOFT.get('dense-f16')!
  const kept: CorpusUtt[] = []
  for await (const u of readCorpus({ feats: FEATS, soft })) kept.push(u)
  const before = kept.map((u) => [Array.from(u.feats), Array.from(u.soft!.logp)])
  // more streamed passes that release theirs, while `kept` still holds views into the first pass's bodies
  await digest(chunks(false)(readCorpus({ feats: FEATS, soft }), 0))
  await digest(frames(false)(readCorpus({ feats: FEATS, soft }), 0))
  t.same(
    kept.map((u) => [Array.from(u.feats), Array.from(u.soft!.logp)]),
    before,
  )
})

t.test('the pool takes back only what it lent, once', async (t) => {
  const a = takeBody(10_000)
  t.equal(a.length, 10_000)
  t.ok(a.buffer.byteLength >= 10_000 && a.buffer.byteLength <= 10_000 * 1.125 + 4096, 'capacity within 1/8')
  const free0 = freeBodyBytes()
  giveBody(a.buffer)
  t.equal(freeBodyBytes(), free0 + a.buffer.byteLength, 'a lent buffer comes back')
  giveBody(a.buffer)
  t.equal(freeBodyBytes(), free0 + a.buffer.byteLength, 'a second give is ignored')
  const b = takeBody(9_990)
  t.equal(b.buffer, a.buffer, 'the next body of that size class gets it')
  t.equal(freeBodyBytes(), free0)
  shareBody(b.buffer)
  giveBody(b.buffer)
  t.equal(freeBodyBytes(), free0, 'a shared body is never taken back')
  giveBody(Buffer.allocUnsafeSlow(10_000).buffer)
  t.equal(freeBodyBytes(), free0, 'a buffer the pool did not lend is ignored')
  const small = takeBody(100)
  giveBody(small.buffer)
  t.equal(freeBodyBytes(), free0, 'small bodies are not pooled')
})
