import t from 'tap'
import fc from 'fast-check'
import { softTargetsAt, SoftRow } from '../stages/train/soft-targets.js'
import { frameBatches, spliceFrameInto } from '../stages/train/frame-batches.js'
import { chunkBatches } from '../stages/train/chunk-batches.js'
import { CorpusUtt } from '../stages/train/corpus.js'
import { encodeF16, decodeF16, toF16, fromF16 } from '../schemas/float16.js'
import { epochRandom } from '../stages/train/shuffle.js'

const close = (a: number, b: number, eps = 1e-6) => Math.abs(a - b) <= eps

t.test('dense soft targets: softmax(log p / T), exact at any T', async (t) => {
  const logits = [2, 0, -1]
  const lse = Math.log(logits.reduce((a, z) => a + Math.exp(z), 0))
  const row: SoftRow = { kind: 'dense', numClasses: 3, width: 3, frames: 1, logp: Float32Array.from(logits.map((z) => z - lse)), f16: false }
  for (const T of [1, 2, 4]) {
    const out = new Float32Array(3)
    softTargetsAt(row, 0, T, out, 0)
    const e = logits.map((z) => Math.exp(z / T))
    const s = e.reduce((a, b) => a + b)
    e.forEach((v, i) => t.ok(close(out[i], v / s), `T=${T} class ${i}: ${out[i]} vs ${v / s}`))
  }
})

t.test('top-k soft targets: listed classes exact at T=1, tail shared equally, T applied to all', async (t) => {
  // C = 5, k = 2: p = [0.5, 0.3 | tail 0.2 over 3 classes]
  const row: SoftRow = {
    kind: 'topk', numClasses: 5, width: 2, frames: 1, f16: false,
    ids: Uint16Array.of(3, 0), logp: Float32Array.of(Math.log(0.5), Math.log(0.3)), tail: Float32Array.of(0.2),
  }
  const out = new Float32Array(5)
  softTargetsAt(row, 0, 1, out, 0)
  t.same(Array.from(out).map((v) => +v.toFixed(6)), [0.3, 0.2 / 3, 0.2 / 3, 0.5, 0.2 / 3].map((v) => +v.toFixed(6)))
  softTargetsAt(row, 0, 2, out, 0)
  const raw = [0.3, 0.2 / 3, 0.2 / 3, 0.5, 0.2 / 3].map((p) => Math.sqrt(p))
  const z = raw.reduce((a, b) => a + b)
  raw.forEach((v, i) => t.ok(close(out[i], v / z), `T=2 class ${i}`))
})

t.test('float16 encode/decode', async (t) => {
  t.equal(toF16(1), 0x3c00)
  t.equal(toF16(-2), 0xc000)
  t.equal(toF16(65504), 0x7bff)
  t.equal(toF16(1e6), 0x7c00, 'overflow → Inf')
  t.equal(fromF16(0x3555), 0.333251953125)
  fc.assert(fc.property(fc.float({ min: -60000, max: 60000, noNaN: true }), (v) => {
    const back = fromF16(toF16(v))
    return Math.abs(back - v) <= Math.max(Math.abs(v) * 2 ** -11, 2 ** -25)
  }), { numRuns: 2000 })
  const arr = Float32Array.of(-3.5, -0.001, 0, 7)
  t.same(Array.from(decodeF16(encodeF16(arr))).map((v) => +v.toPrecision(3)), [-3.5, -0.001, 0, 7])
})

function utt(name: string, frames: number, dim: number, base: number): CorpusUtt {
  const feats = new Float32Array(frames * dim)
  for (let f = 0; f < frames; f++) for (let d = 0; d < dim; d++) feats[f * dim + d] = base + f + d / 10
  return { utt: name, frames, dim, feats, labels: Int32Array.from({ length: frames }, (_, f) => base + f) }
}

async function* gen<T>(xs: T[]) { yield* xs }

t.test('splicing repeats edge frames (Kaldi splice-feats)', async (t) => {
  const u = utt('a', 3, 2, 0) // frames: [0,0.1] [1,1.1] [2,2.1]
  const out = new Float32Array(2 * 5)
  spliceFrameInto(u, 0, 2, 2, out, 0)
  t.same(Array.from(out).map((v) => +v.toFixed(3)), [0, 0.1, 0, 0.1, 0, 0.1, 1, 1.1, 2, 2.1])
  spliceFrameInto(u, 2, 2, 2, out, 0)
  t.same(Array.from(out).map((v) => +v.toFixed(3)), [0, 0.1, 1, 1.1, 2, 2.1, 2, 2.1, 2, 2.1])
})

t.test('frame batches cover every frame exactly once per epoch, deterministically', async (t) => {
  const utts = [utt('a', 7, 2, 0), utt('b', 5, 2, 100), utt('c', 9, 2, 200)]
  const run = async (seed: number) => {
    const seen: number[] = []
    for await (const b of frameBatches(gen(utts), { batchSize: 4, bufferFrames: 10, left: 1, right: 1, rand: epochRandom(seed, 0), hard: true, soft: false, temperature: 1, numClasses: 300 })) {
      t.equal(b.inDim, 6)
      for (let i = 0; i < b.size; i++) {
        seen.push(b.hard![i])
        t.equal(b.x[i * 6 + 2], b.hard![i], 'centre frame of the splice is the labelled frame')
      }
    }
    return seen
  }
  const s1 = await run(1)
  t.same([...s1].sort((a, b) => a - b), utts.flatMap((u) => Array.from(u.labels!)).sort((a, b) => a - b))
  t.same(await run(1), s1, 'same seed, same order')
  t.notSame(await run(2), s1, 'another seed, another order')
})

t.test('chunk batches: padding masked, delay shifts targets, every label once', async (t) => {
  const utts = [utt('a', 5, 1, 0), utt('b', 3, 1, 100)]
  const labels: number[] = []
  for await (const b of chunkBatches(gen(utts), { chunksPerBatch: 2, chunkLength: 4, bufferChunks: 100, delay: 1, rand: epochRandom(3, 0), hard: true, soft: false, temperature: 1, numClasses: 200 })) {
    for (let i = 0; i < b.B * b.L; i++) {
      if (b.mask[i]) {
        labels.push(b.hard![i])
        // delay 1: position g holds input frame min(g, T-1) and the label of frame g − 1, so the
        // label is x − 1, or x itself at the extra position after the last frame (x = 4 or 102)
        const x = Math.round(b.x[i])
        const l = b.hard![i]
        t.ok(l === x - 1 || (l === x && (x === 4 || x === 102)), `label ${l} for input ${x}`)
      }
    }
    t.equal(b.frames, b.mask.reduce((a, v) => a + v, 0))
  }
  t.same(labels.sort((a, b) => a - b), [0, 1, 2, 3, 4, 100, 101, 102])
})
