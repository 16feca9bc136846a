import t from 'tap'
import fc from 'fast-check'
import { softTargetsAt, type SoftRow } from '../stages/train/soft-targets.js'
import { frameBatches, spliceFrameInto } from '../stages/train/frame-batches.js'
import { chunkBatches } from '../stages/train/chunk-batches.js'
import type { CorpusUtt } from '../stages/train/corpus.js'
import { encodeF16, decodeF16, toF16, fromF16 } from '../schemas/float16.js'
import { epochRandom } from '../stages/train/shuffle.js'
import { randomTopkRows } from './toy-data.js'
import { mulberry32 } from '../stages/nn/init.js'

const close = (a: number, b: number, eps = 1e-6) => Math.abs(a - b) <= eps

t.test('dense soft targets: softmax(log p / T), exact at any T', async (t) => {
  const logits = [2, 0, -1]
  const lse = Math.log(logits.reduce((a, z) => a + Math.exp(z), 0))
  const row: SoftRow = {
    kind: 'dense',
    numClasses: 3,
    width: 3,
    frames: 1,
    logp: Float32Array.from(logits.map((z) => z - lse)),
    f16: false,
  }
  for (const T of [1, 2, 4]) {
    const out = new Float32Array(3)
    softTargetsAt(row, 0, T, out, 0)
    const e = logits.map((z) => Math.exp(z / T))
    const s = e.reduce((a, b) => a + b)
    e.forEach((v, i) => {
      t.ok(close(out[i], v / s), `T=${T} class ${i}: ${out[i]} vs ${v / s}`)
    })
  }
})

t.test('top-k soft targets: listed classes exact at T=1, tail shared equally, T applied to all', async (t) => {
  // C = 5, k = 2: p = [0.5, 0.3 | tail 0.2 over 3 classes]
  const row: SoftRow = {
    kind: 'topk',
    numClasses: 5,
    width: 2,
    frames: 1,
    f16: false,
    ids: Uint16Array.of(3, 0),
    logp: Float32Array.of(Math.log(0.5), Math.log(0.3)),
    tail: Float32Array.of(0.2),
  }
  const out = new Float32Array(5)
  softTargetsAt(row, 0, 1, out, 0)
  t.same(
    Array.from(out).map((v) => +v.toFixed(6)),
    [0.3, 0.2 / 3, 0.2 / 3, 0.5, 0.2 / 3].map((v) => +v.toFixed(6)),
  )
  softTargetsAt(row, 0, 2, out, 0)
  const raw = [0.3, 0.2 / 3, 0.2 / 3, 0.5, 0.2 / 3].map((p) => Math.sqrt(p))
  const z = raw.reduce((a, b) => a + b)
  raw.forEach((v, i) => {
    t.ok(close(out[i], v / z), `T=2 class ${i}`)
  })
})

t.test('float16 encode/decode', async (t) => {
  t.equal(toF16(1), 0x3c00)
  t.equal(toF16(-2), 0xc000)
  t.equal(toF16(65504), 0x7bff)
  t.equal(toF16(1e6), 0x7c00, 'overflow → Inf')
  t.equal(fromF16(0x3555), 0.333251953125)
  fc.assert(
    fc.property(fc.float({ min: -60000, max: 60000, noNaN: true }), (v) => {
      const back = fromF16(toF16(v))
      return Math.abs(back - v) <= Math.max(Math.abs(v) * 2 ** -11, 2 ** -25)
    }),
    { numRuns: 2000 },
  )
  const arr = Float32Array.of(-3.5, -0.001, 0, 7)
  t.same(
    Array.from(decodeF16(encodeF16(arr))).map((v) => +v.toPrecision(3)),
    [-3.5, -0.001, 0, 7],
  )
})

function utt(name: string, frames: number, dim: number, base: number): CorpusUtt {
  const feats = new Float32Array(frames * dim)
  for (let f = 0; f < frames; f++) for (let d = 0; d < dim; d++) feats[f * dim + d] = base + f + d / 10
  return { utt: name, frames, dim, feats, labels: Int32Array.from({ length: frames }, (_, f) => base + f) }
}

async function* gen<T>(xs: T[]) {
  yield* xs
}

t.test('splicing repeats edge frames (Kaldi splice-feats)', async (t) => {
  const u = utt('a', 3, 2, 0) // frames: [0,0.1] [1,1.1] [2,2.1]
  const out = new Float32Array(2 * 5)
  spliceFrameInto(u, 0, 2, 2, out, 0)
  t.same(
    Array.from(out).map((v) => +v.toFixed(3)),
    [0, 0.1, 0, 0.1, 0, 0.1, 1, 1.1, 2, 2.1],
  )
  spliceFrameInto(u, 2, 2, 2, out, 0)
  t.same(
    Array.from(out).map((v) => +v.toFixed(3)),
    [0, 0.1, 1, 1.1, 2, 2.1, 2, 2.1, 2, 2.1],
  )
})

t.test('frame batches cover every frame exactly once per epoch, deterministically', async (t) => {
  const utts = [utt('a', 7, 2, 0), utt('b', 5, 2, 100), utt('c', 9, 2, 200)]
  const run = async (seed: number) => {
    const seen: number[] = []
    for await (const b of frameBatches(gen(utts), {
      batchSize: 4,
      bufferFrames: 10,
      left: 1,
      right: 1,
      rand: epochRandom(seed, 0),
      hard: true,
      soft: false,
      temperature: 1,
      numClasses: 300,
    })) {
      t.equal(b.inDim, 6)
      for (let i = 0; i < b.size; i++) {
        seen.push(b.hard![i])
        t.equal(b.x[i * 6 + 2], b.hard![i], 'centre frame of the splice is the labelled frame')
      }
    }
    return seen
  }
  const s1 = await run(1)
  t.same(
    [...s1].sort((a, b) => a - b),
    utts.flatMap((u) => Array.from(u.labels!)).sort((a, b) => a - b),
  )
  t.same(await run(1), s1, 'same seed, same order')
  t.notSame(await run(2), s1, 'another seed, another order')
})

t.test('chunk batches: padding masked, delay shifts targets, every label once', async (t) => {
  const utts = [utt('a', 5, 1, 0), utt('b', 3, 1, 100)]
  const labels: number[] = []
  for await (const b of chunkBatches(gen(utts), {
    chunksPerBatch: 2,
    chunkLength: 4,
    bufferChunks: 100,
    delay: 1,
    rand: epochRandom(3, 0),
    hard: true,
    soft: false,
    temperature: 1,
    numClasses: 200,
  })) {
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
    t.equal(
      b.frames,
      b.mask.reduce((a, v) => a + v, 0),
    )
  }
  t.same(
    labels.sort((a, b) => a - b),
    [0, 1, 2, 3, 4, 100, 101, 102],
  )
})

/** Utterances with top-k soft targets (k of C classes, tail mass) over `utt`'s features and labels. */
function topkUtt(
  name: string,
  frames: number,
  base: number,
  C: number,
  k: number,
  f16: boolean,
  seed: number,
): CorpusUtt {
  const r = epochRandom(seed, 0)
  const { ids, logp, tail } = randomTopkRows(frames, C, k, r, 4)
  return {
    ...utt(name, frames, 2, base),
    soft: { kind: 'topk', numClasses: C, width: k, frames, f16, ids, logp: f16 ? encodeF16(logp) : logp, tail },
  }
}

/** Dense rows of sparse targets (rest everywhere, the listed probabilities at their ids). */
function expand(sp: { k: number; ids: Int32Array; probs: Float32Array; rest: Float32Array }, C: number): number[] {
  const out = new Float32Array(sp.rest.length * C)
  for (let i = 0; i < sp.rest.length; i++) {
    out.fill(sp.rest[i], i * C, (i + 1) * C)
    for (let j = 0; j < sp.k; j++) out[i * C + sp.ids[i * sp.k + j]] = sp.probs[i * sp.k + j]
  }
  return Array.from(out)
}

t.test(
  'frame batches: sparse top-k targets carry exactly the dense targets; reused arrays give the same batches',
  async (t) => {
    const C = 12
    const utts = [
      topkUtt('a', 7, 0, C, 3, true, 1),
      topkUtt('b', 5, 100, C, 3, true, 2),
      topkUtt('c', 9, 200, C, 3, true, 3),
    ]
    const opts = {
      batchSize: 4,
      bufferFrames: 10,
      left: 1,
      right: 1,
      hard: true,
      soft: true,
      temperature: 2,
      numClasses: C,
    }
    const collect = async (sparse: boolean, reuse: boolean) => {
      const out: { x: number[]; hard: number[]; soft: number[]; sparse: boolean }[] = []
      for await (const b of frameBatches(gen(utts), { ...opts, rand: epochRandom(4, 0), sparse, reuse })) {
        t.equal(b.x.length, b.size * 6, 'x sized to the batch')
        out.push({
          x: Array.from(b.x),
          hard: Array.from(b.hard!),
          soft: b.sparse ? expand(b.sparse, C) : Array.from(b.soft!),
          sparse: b.sparse !== undefined && b.soft === undefined,
        })
      }
      return out
    }
    const dense = await collect(false, false)
    const sparse = await collect(true, false)
    const reused = await collect(true, true)
    t.equal(dense.length, 6, '21 frames in batches of 4 (buffers of 12 and 9 frames)')
    t.ok(dense.every((b) => !b.sparse) && sparse.every((b) => b.sparse), 'sparse only when asked')
    t.same(
      sparse,
      dense.map((b) => ({ ...b, sparse: true })),
      'same frames, labels and targets',
    )
    t.same(reused, sparse, 'reused arrays: same batches')
    t.same(await collect(false, true), dense, 'reused dense arrays: same batches')
    const p = dense[0].soft.slice(0, C)
    t.ok(
      Math.abs(p.reduce((a, b) => a + b) - 1) < 1e-6 && p.every((v) => v > 0),
      'targets are a distribution with tail mass',
    )
  },
)

t.test('chunk batches: sparse targets, padding all zero, reused arrays give the same batches', async (t) => {
  const C = 10
  const utts = [
    topkUtt('a', 5, 0, C, 2, false, 5),
    topkUtt('b', 3, 100, C, 2, false, 6),
    topkUtt('c', 11, 200, C, 2, false, 7),
  ]
  const opts = {
    chunksPerBatch: 2,
    chunkLength: 4,
    bufferChunks: 3,
    delay: 1,
    hard: true,
    soft: true,
    temperature: 1.5,
    numClasses: C,
  }
  const collect = async (sparse: boolean, reuse: boolean) => {
    const out: { x: number[]; mask: number[]; hard: number[]; soft: number[] }[] = []
    for await (const b of chunkBatches(gen(utts), { ...opts, rand: epochRandom(8, 0), sparse, reuse })) {
      t.equal(b.sparse !== undefined, sparse, sparse ? 'sparse targets' : 'dense targets')
      out.push({
        x: Array.from(b.x),
        mask: Array.from(b.mask),
        hard: Array.from(b.hard!),
        soft: b.sparse ? expand(b.sparse, C) : Array.from(b.soft!),
      })
    }
    return out
  }
  const dense = await collect(false, false)
  t.equal(dense.length, 3, '6 chunks (delay 1: 2 + 1 + 3) in batches of 2')
  t.equal(
    dense.flatMap((b) => b.mask).reduce((a, v) => a + v, 0),
    19,
    'every frame has one target',
  )
  for (const b of dense) {
    b.mask.forEach((m, i) => {
      const row = b.soft.slice(i * C, (i + 1) * C)
      if (m) t.ok(Math.abs(row.reduce((a, v) => a + v, 0) - 1) < 1e-6, 'a target row is a distribution')
      else t.ok(row.every((v) => v === 0) && b.hard[i] === 0, 'no target: zeros')
    })
  }
  t.same(await collect(true, false), dense, 'sparse = dense')
  t.same(await collect(true, true), dense, 'sparse, reused arrays = dense')
  t.same(await collect(false, true), dense, 'dense, reused arrays = dense')
})

t.test('dense soft targets from f16 (table) and from values that are not log-probabilities', async (t) => {
  const C = 6
  const lp = Float32Array.of(-0.5, -1.2, -3, -8, -0.9, -20)
  const ref = (v: ArrayLike<number>, T: number) => {
    const m = Math.max(...Array.from(v, (x) => x / T))
    const e = Array.from(v, (x) => Math.exp(x / T - m))
    const s = e.reduce((a, b) => a + b)
    return e.map((x) => x / s)
  }
  const half = encodeF16(lp)
  for (const T of [0.5, 1, 2, 7]) {
    const out = new Float32Array(C)
    softTargetsAt({ kind: 'dense', numClasses: C, width: C, frames: 1, logp: half, f16: true }, 0, T, out, 0)
    const want = ref(decodeF16(half), T)
    want.forEach((v, i) => {
      t.ok(close(out[i], v, 1e-7), `f16 T=${T} class ${i}: ${out[i]} vs ${v}`)
    })
  }
  // not log-probabilities (huge positive values, a tiny T): the max-subtracted route, still exact
  const big = Float32Array.of(900, 880, 0, -5, 899, 1)
  const out = new Float32Array(C)
  softTargetsAt({ kind: 'dense', numClasses: C, width: C, frames: 1, logp: big, f16: false }, 0, 1, out, 0)
  ref(big, 1).forEach((v, i) => {
    t.ok(close(out[i], v, 1e-7), `large values, class ${i}`)
  })
  softTargetsAt({ kind: 'dense', numClasses: C, width: C, frames: 1, logp: lp, f16: false }, 0, 0.001, out, 0)
  ref(lp, 0.001).forEach((v, i) => {
    t.ok(close(out[i], v, 1e-7), `T = 0.001, class ${i}: ${out[i]} vs ${v}`)
  })
})

t.test(
  'dense f16 targets: the same bits from 4-byte-aligned rows (read in pairs) and from unaligned ones',
  async (t) => {
    // the float64 sum in the order the f16 path has always used (class c into partial sum c mod 4, a
    // tail of C mod 4 classes into the first), scaled and stored in float32: a wrong value, a swapped
    // half of a pair or another rounding shows as a differing bit (a changed order of the additions
    // only rarely reaches float32 bits)
    const expected = (half: Uint16Array, frame: number, C: number, T: number): Float32Array => {
      const invT = 1 / T
      const e = Array.from(half.subarray(frame * C, (frame + 1) * C), (h) => Math.exp(fromF16(h) * invT))
      const s = [0, 0, 0, 0]
      const body = C - (C % 4)
      e.forEach((v, c) => {
        s[c < body ? c % 4 : 0] += v
      })
      const k = 1 / (s[0] + s[1] + s[2] + s[3])
      return Float32Array.from(e, (v) => Math.fround(v) * k)
    }
    const rand = mulberry32(5)
    for (const C of [1000, 14, 12, 10, 8, 6, 7]) {
      const frames = 3
      const lp = Float32Array.from({ length: frames * C }, () => -12 * rand() - 0.01)
      const half = encodeF16(lp)
      // the same half values at byte offset 0 (pairs path when C is even) and at byte offset 2
      const aligned = new Uint16Array(new ArrayBuffer(half.length * 2 + 8), 0, half.length)
      aligned.set(half)
      const shifted = new Uint16Array(new ArrayBuffer(half.length * 2 + 8), 2, half.length)
      shifted.set(half)
      for (const T of [1, 2, 3.5]) {
        for (let f = 0; f < frames; f++) {
          const want = expected(half, f, C, T)
          for (const [name, logp] of [
            ['aligned', aligned],
            ['unaligned', shifted],
          ] as const) {
            const out = new Float32Array(C + 3)
            softTargetsAt({ kind: 'dense', numClasses: C, width: C, frames, logp, f16: true }, f, T, out, 3)
            const bad = Array.from(want).findIndex((v, c) => !Object.is(v, out[3 + c]))
            t.equal(bad, -1, `C=${C} T=${T} frame ${f} ${name}: bit-identical (first difference at ${bad})`)
          }
        }
      }
    }
  },
)

t.test("softRow rejects top-k class ids outside the file's classes", async (t) => {
  const { inferSchema } = await import('../stages/infer/stage.js')
  const { makeUttBatch } = await import('../schemas/utterance.js')
  const { softRow } = await import('../stages/train/soft-targets.js')
  const meta = { numClasses: 5, fingerprint: 'x', inventory: null, priors: null } as unknown as Parameters<
    typeof inferSchema
  >[0]
  const schema = inferSchema(meta, { topK: 2, dtype: 'f32' }, 'f')
  const batch = (ids: number[]) =>
    makeUttBatch(schema, {
      utt: 'u',
      ids: Uint16Array.from(ids),
      logp: Float32Array.of(-0.1, -3, -0.2, -2),
      tail: Float32Array.of(0.05, 0.1),
    })
  const ok = softRow(batch([4, 0, 1, 2]), 'soft-topk', 5)
  t.same([ok.kind, ok.width, ok.frames], ['topk', 2, 2])
  t.throws(() => softRow(batch([4, 0, 5, 2]), 'soft-topk', 5), {
    code: 'bad-soft',
    message: /class 5, metadata says 5 classes/,
  })
})
