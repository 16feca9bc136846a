import t from 'tap'
import * as tf from '@tensorflow/tfjs'
import { join } from 'node:path'
import { buildModel, selectBackend } from '../stages/nn/index.js'
import { type TrainBatch, batchLoss } from '../stages/train/loss.js'
import { type DataSource, train, evaluate } from '../stages/train/trainer.js'
import { newbobStart, newbobUpdate, DEFAULT_NEWBOB } from '../stages/train/newbob.js'
import { epochRandom } from '../stages/train/shuffle.js'
import { loadCheckpoint } from '../stages/train/checkpoint.js'
import { tmp } from './helpers.js'
import { blobSource, blobs, randomTopkRows } from './toy-data.js'

await selectBackend('wasm')

const source = (data: { x: Float32Array; y: Int32Array }, batch: number, seed: number, poison?: number) =>
  blobSource(data, batch, seed, poison, 'first')

const cfg = (dir: string, resume = false) => ({
  optimizer: { name: 'sgd' as const },
  schedule: { ...DEFAULT_NEWBOB, initialLr: 0.5, maxEpochs: 6, minEpochs: 6, fixed: true },
  clip: 5,
  maxBadBatches: 3,
  logEvery: 4,
  phase: 'ce',
  resume,
  checkpoint: { path: join(dir, 'ck.bin'), everyMinutes: 0, fingerprint: 'x' },
})

const trainSet = blobs(600, 1)
const heldSet = blobs(150, 2)

t.test('a DNN learns; a seeded run repeated gives identical weights', async (t) => {
  const run = async () => {
    const m = buildModel({
      model: { type: 'dnn', hidden: [16], activation: 'sigmoid' },
      inputDim: 4,
      numClasses: 3,
      seed: 7,
    })
    const r = await train(m, source(trainSet, 32, 5), source(heldSet, 50, 0), cfg(tmp()))
    const w = m.params.toFlat()
    m.params.dispose()
    return { r, w }
  }
  const a = await run()
  t.ok(a.r.bestHeldoutAccuracy > 90, `held-out accuracy ${a.r.bestHeldoutAccuracy.toFixed(1)}% > 90%`)
  t.ok(a.r.epochs[a.r.epochs.length - 1].train_loss < a.r.epochs[0].train_loss, 'training loss falls')
  const b = await run()
  for (const k of Object.keys(a.w)) t.same(Array.from(b.w[k]), Array.from(a.w[k]), `${k} identical`)
})

t.test('resume from a mid-epoch checkpoint ends with the same weights', async (t) => {
  const full = buildModel({
    model: { type: 'dnn', hidden: [8], activation: 'tanh' },
    inputDim: 4,
    numClasses: 3,
    seed: 3,
  })
  await train(full, source(trainSet, 32, 5), source(heldSet, 50, 0), cfg(tmp()))
  const ref = full.params.toFlat()
  // interrupted run: stop after 2 epochs + 5 batches by throwing from the data source
  const dir = tmp()
  const m1 = buildModel({
    model: { type: 'dnn', hidden: [8], activation: 'tanh' },
    inputDim: 4,
    numClasses: 3,
    seed: 3,
  })
  const src = source(trainSet, 32, 5)
  const breaking: DataSource = {
    async *epoch(e, skip) {
      let k = skip
      for await (const b of src.epoch(e, skip)) {
        if (e === 2 && k === 9) throw new Error('simulated crash')
        yield b
        k++
      }
    },
  }
  const c1 = { ...cfg(dir), logEvery: 4 }
  await t.rejects(train(m1, breaking, source(heldSet, 50, 0), c1), /simulated crash/)
  const ck = loadCheckpoint<{ epoch: number; skip: number }>(join(dir, 'ck.bin'))!
  t.equal(ck.header.epoch, 2, 'checkpoint inside epoch 3')
  t.equal(ck.header.skip, 8, 'after 8 batches (two log intervals)')
  const m2 = buildModel({
    model: { type: 'dnn', hidden: [8], activation: 'tanh' },
    inputDim: 4,
    numClasses: 3,
    seed: 3,
  })
  await train(m2, source(trainSet, 32, 5), source(heldSet, 50, 0), cfg(dir, true))
  const w = m2.params.toFlat()
  for (const k of Object.keys(ref)) t.same(Array.from(w[k]), Array.from(ref[k]), `${k} identical after resume`)
})

t.test('the NaN guard skips a poisoned batch and reports it; too many in a row stop training', async (t) => {
  const m = buildModel({ model: { type: 'dnn', hidden: [8] }, inputDim: 4, numClasses: 3, seed: 1 })
  const r = await train(m, source(trainSet, 32, 5, 3), source(heldSet, 50, 0), cfg(tmp()))
  t.equal(r.epochs[0].bad_batches, 1, 'one bad batch reported in epoch 1')
  t.ok(
    Object.values(m.params.toFlat()).every((a) => a.every(Number.isFinite)),
    'weights stay finite',
  )
  const always: DataSource = {
    async *epoch(e, s) {
      for await (const b of source(trainSet, 32, 5).epoch(e, s)) {
        const x = tf.mul(b.x, NaN)
        b.x.dispose()
        yield { ...b, x }
      }
    },
  }
  await t.rejects(train(m, always, source(heldSet, 50, 0), cfg(tmp())), { code: 'diverged' })
})

t.test('KT loss: T²·CE on softened logits; its gradient is T·(q_T − p)', async (t) => {
  const z = tf.tensor2d([
    [1, 2, 0.5],
    [0, -1, 3],
  ])
  const p = tf.tensor2d([
    [0.2, 0.7, 0.1],
    [0.1, 0.1, 0.8],
  ])
  const T = 2
  const b: TrainBatch = { x: z, terms: [{ targets: p, temperature: T, weight: 1 }], rows: 2 }
  const [loss, grad] = tf.tidy(() => {
    const g = tf.grad((zz: tf.Tensor) => batchLoss(zz, b))(z)
    return [batchLoss(z, b), g]
  })
  // by hand: per frame T²·(−Σ p log softmax(z/T)), averaged over 2 frames
  const zs = [
    [1, 2, 0.5],
    [0, -1, 3],
  ]
  const ps = [
    [0.2, 0.7, 0.1],
    [0.1, 0.1, 0.8],
  ]
  let want = 0
  const wantGrad: number[] = []
  zs.forEach((row, n) => {
    const e = row.map((v) => Math.exp(v / T))
    const s = e.reduce((a, c) => a + c)
    const q = e.map((v) => v / s)
    want += (-T * T * ps[n].reduce((a, pv, c) => a + pv * Math.log(q[c]), 0)) / 2
    q.forEach((qv, c) => {
      wantGrad.push((T * (qv - ps[n][c])) / 2)
    })
  })
  t.ok(Math.abs(loss.dataSync()[0] - want) < 1e-5, `loss ${loss.dataSync()[0]} vs ${want}`)
  Array.from(grad.dataSync()).forEach((g, i) => {
    t.ok(Math.abs(g - wantGrad[i]) < 1e-5, `grad ${i}`)
  })
})

t.test('newbob: halves after a small gain, stops after another, rejects a worse epoch', async (t) => {
  const c = { ...DEFAULT_NEWBOB, initialLr: 1, minEpochs: 1, maxEpochs: 10 }
  let s = newbobStart(c)
  s = newbobUpdate(c, s, 50) // first epoch: accepted, big gain
  t.equal(s.lr, 1)
  s = newbobUpdate(c, s, 55) // +5: keep
  t.equal(s.lr, 1)
  s = newbobUpdate(c, s, 55.2) // +0.2 < 0.5: start halving
  t.equal(s.lr, 0.5)
  t.ok(s.halving)
  const worse = newbobUpdate(c, s, 54)
  t.notOk(worse.accepted, 'a worse epoch is rejected')
  t.ok(worse.done, 'and, while halving, stops training')
  s = newbobUpdate(c, s, 56) // +0.8 while halving: continue halving
  t.equal(s.lr, 0.25)
  t.notOk(s.done)
})

t.test('newbob: min-epochs delays the stop, not the halving (golden sequence)', async (t) => {
  // Kaldi's train_scheduler.sh: rel. improvement below start → halve from now on (whatever the
  // epoch); below end while halving → stop, unless still within min-iters; a worse epoch is undone.
  const c = { ...DEFAULT_NEWBOB, initialLr: 1, minEpochs: 4, maxEpochs: 10 }
  const accs = [40, 40.2, 39, 41, 41.05, 41.3]
  let s = newbobStart(c)
  const seen: [number, boolean, boolean][] = []
  for (const a of accs) {
    if (s.done) break
    const next = newbobUpdate(c, s, a)
    seen.push([next.lr, next.accepted, next.done])
    s = next
  }
  t.same(seen, [
    [1, true, false], // 40: first epoch
    [0.5, true, false], // +0.2 < 0.5: halving starts at epoch 2, before min-epochs
    [0.25, false, false], // worse: undone; would stop, but epoch 3 < min-epochs
    [0.125, true, false], // +0.8 from the best (40.2)
    [0.0625, true, true], // +0.05 < 0.1 while halving, epoch 5 ≥ 4: stop
  ])
  t.equal(s.best, 41.05)
  t.equal(s.bestEpoch, 5)
})

t.test('evaluate reports accuracy in percent', async (t) => {
  const m = buildModel({ model: { type: 'dnn', hidden: [] }, inputDim: 4, numClasses: 3, seed: 1 })
  const e = await evaluate(m, source(heldSet, 50, 0))
  t.ok(e.accuracy >= 0 && e.accuracy <= 100)
  t.equal(e.rows, 150)
})

t.test(
  'the KT loss is averaged per frame: re-chunking the same frames (with padding) gives the same loss',
  async (t) => {
    // 13 frames of logits and soft targets, as chunks of 5 (3 chunks, 2 padded) and of 4 (4 chunks, 3 padded)
    const C = 4
    const r = epochRandom(11, 0)
    const frames = 13
    const z = Array.from({ length: frames * C }, () => r() * 4 - 2)
    const pRaw = Array.from({ length: frames * C }, () => r() + 0.01)
    const p = pRaw.map(
      (v, i) => v / pRaw.slice(Math.floor(i / C) * C, Math.floor(i / C) * C + C).reduce((a, b) => a + b),
    )
    const chunked = (L: number) => {
      const B = Math.ceil(frames / L)
      const zz = new Float32Array(B * L * C)
      const pp = new Float32Array(B * L * C)
      const mask = new Float32Array(B * L)
      for (let f = 0; f < frames; f++) {
        zz.set(z.slice(f * C, f * C + C), f * C)
        pp.set(p.slice(f * C, f * C + C), f * C)
        mask[f] = 1
      }
      for (let i = frames; i < B * L; i++) pp[i * C] = 1 // padding rows carry junk targets: the mask must hide them
      const b: TrainBatch = {
        x: tf.tensor3d(zz, [B, L, C]),
        terms: [{ targets: tf.tensor3d(pp, [B, L, C]), temperature: 2, weight: 1 }],
        mask: tf.tensor2d(mask, [B, L]),
        rows: B * L,
      }
      const v = batchLoss(b.x, b).dataSync()[0]
      tf.dispose([b.x, b.mask!, b.terms[0].targets])
      return v
    }
    const a = chunked(5)
    const b = chunked(4)
    const c = chunked(13)
    t.ok(Math.abs(a - b) < 1e-6 && Math.abs(a - c) < 1e-6, `loss with chunks of 5, 4, 13: ${a}, ${b}, ${c}`)
  },
)

t.test('KT loss on top-k targets with tail mass, against hand-computed numbers', async (t) => {
  // C = 4, k = 2 at T = 1: p = [0.6 (class 2), 0.3 (class 0) | tail 0.1 over classes 1, 3]
  const { softTargetsAt } = await import('../stages/train/soft-targets.js')
  const row = {
    kind: 'topk' as const,
    numClasses: 4,
    width: 2,
    frames: 1,
    f16: false,
    ids: Uint16Array.of(2, 0),
    logp: Float32Array.of(Math.log(0.6), Math.log(0.3)),
    tail: Float32Array.of(0.1),
  }
  const T = 2
  const targets = new Float32Array(4)
  softTargetsAt(row, 0, T, targets, 0)
  // by hand: p_T ∝ p^(1/T) over all classes, tail classes 0.05 each
  const pT = [0.3, 0.05, 0.6, 0.05].map((v) => Math.sqrt(v))
  const zsum = pT.reduce((a, b) => a + b)
  pT.forEach((v, i) => {
    t.ok(Math.abs(targets[i] - v / zsum) < 1e-6, `target ${i}`)
  })
  const logits = [0.5, -1, 2, 0]
  const b: TrainBatch = {
    x: tf.tensor2d([logits]),
    terms: [{ targets: tf.tensor2d([Array.from(targets)]), temperature: T, weight: 1 }],
    rows: 1,
  }
  const [loss, grad] = tf.tidy(() => [batchLoss(b.x, b), tf.grad((z: tf.Tensor) => batchLoss(z, b))(b.x)])
  const e = logits.map((z) => Math.exp(z / T))
  const q = e.map((v) => v / e.reduce((a, c) => a + c))
  const p = pT.map((v) => v / zsum)
  const ce = -p.reduce((a, pv, c) => a + pv * Math.log(q[c]), 0)
  const kl = p.reduce((a, pv, c) => a + pv * Math.log(pv / q[c]), 0)
  t.ok(Math.abs(loss.dataSync()[0] - T * T * ce) < 1e-5, `loss T²·CE = ${T * T * ce}`)
  t.ok(
    Math.abs(loss.dataSync()[0] - T * T * kl - T * T * -p.reduce((a, pv) => a + pv * Math.log(pv), 0)) < 1e-5,
    'T²·KL + T²·H(p)',
  )
  Array.from(grad.dataSync()).forEach((g, i) => {
    t.ok(Math.abs(g - T * (q[i] - p[i])) < 1e-5, `grad ${i} = T·(q−p)`)
  })
})

t.test(
  'KT loss and gradient: sparse top-k targets with tail equal the dense targets (random logits, mask, two terms)',
  async (t) => {
    const { softTargetsAt, topkTargetsAt } = await import('../stages/train/soft-targets.js')
    const { encodeF16 } = await import('../schemas/float16.js')
    const r = epochRandom(5, 0)
    const C = 40
    const k = 6
    const [B, L] = [3, 5]
    const n = B * L
    for (const f16 of [false, true]) {
      for (const T of [1, 2, 3.5]) {
        // a stored top-k row per frame: log p of k distinct classes (falling), tail mass τ
        const { ids, logp, tail } = randomTopkRows(n, C, k, r, 3)
        const row = {
          kind: 'topk' as const,
          numClasses: C,
          width: k,
          frames: n,
          f16,
          ids,
          logp: f16 ? encodeF16(logp) : logp,
          tail,
        }
        // what the feeders write: dense [n, C] (softTargetsAt) and sparse (topkTargetsAt)
        const dense = new Float32Array(n * C)
        const spIds = new Int32Array(n * k)
        const spProbs = new Float32Array(n * k)
        const spRest = new Float32Array(n)
        for (let f = 0; f < n; f++) {
          softTargetsAt(row, f, T, dense, f * C)
          spRest[f] = topkTargetsAt(row, f, T, spIds, spProbs, f * k)
        }
        // the sparse form expands to exactly the dense targets
        const expanded = new Float32Array(n * C)
        for (let f = 0; f < n; f++) {
          expanded.fill(spRest[f], f * C, (f + 1) * C)
          for (let j = 0; j < k; j++) expanded[f * C + spIds[f * k + j]] = spProbs[f * k + j]
        }
        t.same(Array.from(expanded), Array.from(dense), `f16 ${f16} T ${T}: sparse targets expand to the dense ones`)
        const rowSums = Array.from({ length: n }, (_, f) => dense.subarray(f * C, (f + 1) * C).reduce((a, b) => a + b))
        t.ok(
          rowSums.every((s) => Math.abs(s - 1) < 1e-5),
          'targets are distributions',
        )

        const logits = Float32Array.from({ length: n * C }, () => 6 * r() - 3)
        const mask = Float32Array.from({ length: n }, (_, f) => (f % L < L - (f < L ? 0 : 2) ? 1 : 0)) // chunks 2, 3 padded
        const labels = Int32Array.from({ length: n }, () => Math.floor(r() * C))
        const lab = tf.tensor2d(labels, [B, L], 'int32')
        const hardTerm = { targets: tf.tidy(() => tf.cast(tf.oneHot(lab, C), 'float32')), temperature: 1, weight: 0.3 }
        const common = { x: tf.tensor3d(logits, [B, L, C]), mask: tf.tensor2d(mask, [B, L]), rows: n }
        const bDense: TrainBatch = {
          ...common,
          terms: [hardTerm, { targets: tf.tensor3d(dense, [B, L, C]), temperature: T, weight: 0.7 }],
        }
        const bSparse: TrainBatch = {
          ...common,
          terms: [
            hardTerm,
            {
              sparse: {
                ids: tf.tensor3d(spIds, [B, L, k], 'int32'),
                probs: tf.tensor3d(spProbs, [B, L, k]),
                rest: tf.tensor2d(spRest, [B, L]),
              },
              temperature: T,
              weight: 0.7,
            },
          ],
        }
        const [ld, ls, gd, gs] = tf.tidy(() => [
          batchLoss(common.x, bDense),
          batchLoss(common.x, bSparse),
          tf.grad((z: tf.Tensor) => batchLoss(z, bDense))(common.x),
          tf.grad((z: tf.Tensor) => batchLoss(z, bSparse))(common.x),
        ])
        // float64 reference: Σ_frames mask·(0.3·CE(onehot, z) + 0.7·T²·CE(p, z/T)) / Σ mask
        let want = 0
        let wsum = 0
        for (let f = 0; f < n; f++) {
          if (!mask[f]) continue
          const z = Array.from(logits.subarray(f * C, (f + 1) * C))
          const lse = (s: number) => {
            const m = Math.max(...z.map((v) => v / s))
            return m + Math.log(z.reduce((a, v) => a + Math.exp(v / s - m), 0))
          }
          const ce = -(z[labels[f]] - lse(1))
          let kt = 0
          for (let c = 0; c < C; c++) kt -= dense[f * C + c] * (z[c] / T - lse(T))
          want += 0.3 * ce + 0.7 * T * T * kt
          wsum++
        }
        want /= wsum
        const a = ld.dataSync()[0]
        const b = ls.dataSync()[0]
        t.ok(Math.abs(a - want) < 1e-5 * want, `f16 ${f16} T ${T}: dense loss ${a} = reference ${want}`)
        t.ok(Math.abs(b - a) < 2e-6 * a, `f16 ${f16} T ${T}: sparse loss ${b} = dense ${a}`)
        const g1 = gd.dataSync()
        const g2 = gs.dataSync()
        let worst = 0
        let scale = 0
        for (let i = 0; i < g1.length; i++) {
          worst = Math.max(worst, Math.abs(g1[i] - g2[i]))
          scale = Math.max(scale, Math.abs(g1[i]))
        }
        t.ok(
          scale > 1e-3 && worst < 1e-6 * Math.max(1, scale),
          `f16 ${f16} T ${T}: gradients agree (max |Δ| ${worst.toExponential(2)}, max |g| ${scale.toFixed(3)})`,
        )
        const padded = Array.from({ length: n }, (_, f) => f).filter((f) => !mask[f])
        t.ok(
          padded.every((f) => g2.subarray(f * C, (f + 1) * C).every((v) => v === 0)),
          'padded frames get no gradient',
        )
        tf.dispose([
          ld,
          ls,
          gd,
          gs,
          lab,
          hardTerm.targets,
          common.x,
          common.mask,
          bDense.terms[1].targets!,
          ...Object.values(bSparse.terms[1].sparse!),
        ])
      }
    }
  },
)

t.test(
  "speechSource from top-k files: sparse batches (the default) give the dense batches' loss and gradient",
  async (t) => {
    const { join } = await import('node:path')
    const { speechSource } = await import('../stages/train/speech-source.js')
    const { writeSoftFiles } = await import('../bench/soft-read.js')
    const { writeRandomFeatures } = await import('../bench/common.js')
    const { tmp: tmpDir } = await import('./helpers.js')
    const dir = tmpDir()
    const C = 30
    const D = 3
    const lengths = [17, 40, 9, 25]
    const feats = join(dir, 'feats.arrow')
    writeRandomFeatures(feats, lengths, D, { seed: 4 })
    const files = writeSoftFiles(dir, lengths, C, [
      { storage: 'top5-f16', topK: 5, dtype: 'f16' },
      { storage: 'top5-f32', topK: 5, dtype: 'f32' },
    ])
    const layouts = [
      { kind: 'frames' as const, batchSize: 16, bufferFrames: 50, left: 1, right: 1 },
      { kind: 'chunks' as const, chunksPerBatch: 3, chunkLength: 7, bufferChunks: 8, delay: 2 },
    ]
    for (const [storage, soft] of files) {
      for (const layout of layouts) {
        const src = (sparseSoft: boolean) =>
          speechSource({
            feats,
            soft,
            numClasses: C,
            layout,
            targets: { hard: 0, soft: 1, temperature: 2 },
            seed: 3,
            sparseSoft,
          })
        const dense: TrainBatch[] = []
        const sparse: TrainBatch[] = []
        for await (const b of src(false).epoch(1, 0)) dense.push(b)
        for await (const b of src(true).epoch(1, 0)) sparse.push(b)
        t.equal(sparse.length, dense.length, `${storage} ${layout.kind}: ${dense.length} batches either way`)
        t.ok(
          sparse.every((b) => b.terms[0].sparse?.ids.shape.at(-1) === 5 && !b.terms[0].targets),
          'sparse batches carry k = 5 ids, no dense targets',
        )
        t.ok(
          dense.every((b) => b.terms[0].targets?.shape.at(-1) === C),
          'dense batches carry [.., C] targets',
        )
        const inDim = layout.kind === 'frames' ? 3 * D : D
        const W = tf.tensor2d(
          Float32Array.from({ length: inDim * C }, (_, i) => Math.sin(i * 0.37)),
          [inDim, C],
        )
        let worst = 0
        let worstLoss = 0
        for (let i = 0; i < dense.length; i++) {
          const [a, b] = [dense[i], sparse[i]]
          t.same(Array.from(b.x.dataSync()), Array.from(a.x.dataSync()))
          const f = (batch: TrainBatch) => (w: tf.Tensor) => {
            const x2 = tf.reshape(batch.x, [-1, inDim])
            return batchLoss(tf.reshape(tf.matMul(x2, w), [...batch.x.shape.slice(0, -1), C]), batch)
          }
          const [la, lb, ga, gb] = tf.tidy(() => [f(a)(W), f(b)(W), tf.grad(f(a))(W), tf.grad(f(b))(W)])
          worstLoss = Math.max(worstLoss, Math.abs(la.dataSync()[0] - lb.dataSync()[0]) / la.dataSync()[0])
          const d1 = ga.dataSync()
          const d2 = gb.dataSync()
          for (let j = 0; j < d1.length; j++) worst = Math.max(worst, Math.abs(d1[j] - d2[j]))
          tf.dispose(
            [
              la,
              lb,
              ga,
              gb,
              a.x,
              b.x,
              a.mask,
              b.mask,
              a.terms[0].targets,
              ...Object.values(b.terms[0].sparse ?? {}),
            ].filter((x): x is tf.Tensor => x != null),
          )
        }
        W.dispose()
        t.ok(
          worstLoss < 2e-6 && worst < 1e-6,
          `${storage} ${layout.kind}: loss (rel ${worstLoss.toExponential(2)}) and gradient (|Δ| ${worst.toExponential(2)}) agree`,
        )
      }
    }
  },
)
