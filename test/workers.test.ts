import t from 'tap'
import * as tf from '@tensorflow/tfjs'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { type Model, buildModel, selectBackend } from '../stages/nn/index.js'
import { DEFAULT_NEWBOB } from '../stages/train/newbob.js'
import { epochRandom } from '../stages/train/shuffle.js'
import type { TrainBatch } from '../stages/train/loss.js'
import { type DataSource, type TrainerConfig, train } from '../stages/train/trainer.js'
import { mapTerm, partGradients } from '../stages/train/loss.js'
import { partBounds, workerEntryPath } from '../stages/train/workers.js'
import { tmp } from './helpers.js'
import { blobSource, blobs } from './toy-data.js'

/**
 * Data-parallel training (--workers N). The workers run the compiled dist/stages/train/worker-entry.js,
 * so `npx tsc -p .` must have run (the package's pretest does).
 */
await selectBackend('wasm')
t.ok(existsSync(workerEntryPath()), `compiled worker entry at ${workerEntryPath()}`)

/** Three Gaussian blobs in 4-D, frame batches of `batch` rows; a poisoned batch's NaN sits in its last row (a worker's part). */
function frameSource(n: number, batch: number, seed: number, poison?: number): DataSource {
  return blobSource(blobs(n, seed), batch, seed, poison, 'last')
}

/**
 * Chunks [B, L, 3] with a padding mask (odd chunks end early, so parts hold unequal shares of the
 * frames), hard labels plus a soft-target term at T = 2: the KT regulariser's two-term loss.
 */
function chunkSource(batches: number, B: number, L: number, seed: number, sparse = false): DataSource {
  return {
    async *epoch(e: number, skip: number) {
      const r = epochRandom(seed, e)
      for (let k = 0; k < batches; k++) {
        const x = new Float32Array(B * L * 3)
        const y = new Int32Array(B * L)
        const mask = new Float32Array(B * L)
        const soft = new Float32Array(B * L * 3)
        for (let b = 0; b < B; b++) {
          const len = b % 2 ? 1 + Math.floor(r() * (L - 1)) : L
          for (let i = 0; i < L; i++) {
            const f = b * L + i
            y[f] = Math.floor(r() * 3)
            mask[f] = i < len ? 1 : 0
            for (let d = 0; d < 3; d++) x[f * 3 + d] = (d === y[f] ? 1.5 : 0) + r() - 0.5
            for (let c = 0; c < 3; c++) soft[f * 3 + c] = c === y[f] ? 0.8 : 0.1
          }
        }
        if (k < skip) continue
        const labels = tf.tensor2d(y, [B, L], 'int32')
        // the same soft targets sparsely: the label's class listed (0.8), 0.1 for each other class
        const softTerm = sparse
          ? {
              sparse: {
                ids: tf.tensor3d(y, [B, L, 1], 'int32'),
                probs: tf.fill([B, L, 1], 0.8),
                rest: tf.fill([B, L], 0.1),
              },
              temperature: 2,
              weight: 0.5,
            }
          : { targets: tf.tensor3d(soft, [B, L, 3]), temperature: 2, weight: 0.5 }
        yield {
          x: tf.tensor3d(x, [B, L, 3]),
          labels,
          mask: tf.tensor2d(mask, [B, L]),
          rows: B * L,
          terms: [
            { targets: tf.tidy(() => tf.cast(tf.oneHot(labels, 3), 'float32')), temperature: 1, weight: 0.5 },
            softTerm,
          ],
        } as TrainBatch
      }
    },
  }
}

const cfg = (dir: string, workers: number, extra: Partial<TrainerConfig> = {}): TrainerConfig => ({
  optimizer: { name: 'sgd' },
  clip: 5,
  maxBadBatches: 3,
  logEvery: 4,
  phase: 'ce',
  workers,
  schedule: { ...DEFAULT_NEWBOB, initialLr: 0.5, maxEpochs: 2, minEpochs: 2, fixed: true },
  checkpoint: { path: join(dir, 'ck.bin'), everyMinutes: 0, fingerprint: 'x' },
  ...extra,
})

const dnn = () =>
  buildModel({ model: { type: 'dnn', hidden: [16], activation: 'sigmoid' }, inputDim: 4, numClasses: 3, seed: 7 })
const lstm = () => buildModel({ model: { type: 'lstm', cells: 8 }, inputDim: 3, numClasses: 3, seed: 5 })

async function run(make: () => Model, data: DataSource, held: DataSource, c: TrainerConfig) {
  const m = make()
  const r = await train(m, data, held, c)
  const w = m.params.toFlat()
  m.params.dispose()
  return { r, w }
}

function maxDiff(a: Record<string, Float32Array>, b: Record<string, Float32Array>): number {
  let d = 0
  for (const k of Object.keys(a)) for (let i = 0; i < a[k].length; i++) d = Math.max(d, Math.abs(a[k][i] - b[k][i]))
  return d
}

function identical(a: Record<string, Float32Array>, b: Record<string, Float32Array>): boolean {
  return Object.keys(a).every((k) =>
    Buffer.from(a[k].buffer, a[k].byteOffset, a[k].byteLength).equals(
      Buffer.from(b[k].buffer, b[k].byteOffset, b[k].byteLength),
    ),
  )
}

t.test('part bounds: contiguous, deterministic, part 0 never empty', async (t) => {
  t.same(partBounds(256, 2), [0, 128, 256])
  t.same(partBounds(5, 2), [0, 3, 5])
  t.same(partBounds(1, 3), [0, 1, 1, 1])
  t.same(partBounds(7, 3), [0, 3, 5, 7])
})

t.test('parts weighted by their share of target frames sum to the full-batch loss and gradient', async (t) => {
  const m = lstm()
  const b = (await chunkSource(1, 5, 6, 3).epoch(0, 0)[Symbol.asyncIterator]().next()).value as TrainBatch
  const full = partGradients(m, b, 1)
  const mask = b.mask!.dataSync<'float32'>()
  const total = mask.reduce((a, v) => a + v, 0)
  const bounds = partBounds(5, 2)
  let loss = 0
  const sum: Record<string, Float32Array> = {}
  for (let k = 0; k < 2; k++) {
    const [s, e] = [bounds[k], bounds[k + 1]]
    const cut = (x: tf.Tensor) => tf.slice(x, [s, ...x.shape.slice(1).map(() => 0)], [e - s, ...x.shape.slice(1)])
    const part: TrainBatch = {
      x: cut(b.x),
      mask: cut(b.mask!),
      labels: cut(b.labels!),
      terms: b.terms.map((u) => mapTerm(u, cut)),
      rows: (e - s) * 6,
    }
    const share = mask.slice(s * 6, e * 6).reduce((a, v) => a + v, 0) / total
    const r = partGradients(m, part, share)
    loss += r.value.dataSync()[0]
    for (const [n, g] of Object.entries(r.grads)) {
      const v = g.dataSync() as Float32Array
      sum[n] = sum[n] ? sum[n].map((x, i) => x + v[i]) : Float32Array.from(v)
    }
  }
  const fl = full.value.dataSync()[0]
  t.ok(Math.abs(loss - fl) < 1e-5 * Math.abs(fl), `loss ${loss} = full ${fl}`)
  let worst = 0
  for (const [n, g] of Object.entries(full.grads)) {
    const v = g.dataSync()
    const scale = Math.max(1e-3, ...Array.from(v, Math.abs))
    for (let i = 0; i < v.length; i++) worst = Math.max(worst, Math.abs(v[i] - sum[n][i]) / scale)
  }
  t.ok(worst < 1e-5, `gradient: max relative difference ${worst.toExponential(2)}`)
})

/** The 2-worker DNN run, also the reference of the resume test. */
let dnn2: Record<string, Float32Array> | null = null

t.test('DNN: 2 workers match 1 to float32 rounding; the same worker count repeats exactly', async (t) => {
  const c1 = await run(dnn, frameSource(600, 48, 5), frameSource(150, 50, 0), cfg(tmp(), 1))
  const c2 = await run(dnn, frameSource(600, 48, 5), frameSource(150, 50, 0), cfg(tmp(), 2))
  const c2b = await run(dnn, frameSource(600, 48, 5), frameSource(150, 50, 0), cfg(tmp(), 2))
  const d = maxDiff(c1.w, c2.w)
  dnn2 = c2.w
  t.comment(
    `DNN 2 epochs (26 steps): max |w(2 workers) − w(1)| = ${d.toExponential(2)}; held-out ${c1.r.bestHeldoutAccuracy.toFixed(2)}% vs ${c2.r.bestHeldoutAccuracy.toFixed(2)}%`,
  )
  t.ok(d < 1e-4, `weights within 1e-4 (got ${d.toExponential(2)})`)
  t.ok(c2.r.bestHeldoutAccuracy > 90, 'and the model learns')
  t.ok(identical(c2.w, c2b.w), '2 workers twice: identical weights')
  t.same(
    c2.r.epochs.map((e) => e.heldout_accuracy),
    c2b.r.epochs.map((e) => e.heldout_accuracy),
  )
  t.ok(
    Math.abs(c2.r.epochs[0].train_loss - c1.r.epochs[0].train_loss) < 1e-4,
    'training loss of the parts adds up to the batch loss',
  )
  t.equal(
    c2.r.epochs[0].train_accuracy!.toFixed(3),
    c1.r.epochs[0].train_accuracy!.toFixed(3),
    'training accuracy counts every part',
  )
})

t.test('LSTM with masks and two target terms: 2 and 3 workers match 1', async (t) => {
  const c = (w: number) =>
    cfg(tmp(), w, { schedule: { ...DEFAULT_NEWBOB, initialLr: 0.3, maxEpochs: 2, minEpochs: 2, fixed: true } })
  const c1 = await run(lstm, chunkSource(6, 5, 6, 1), chunkSource(2, 4, 6, 9), c(1))
  const c2 = await run(lstm, chunkSource(6, 5, 6, 1), chunkSource(2, 4, 6, 9), c(2))
  const c3 = await run(lstm, chunkSource(6, 5, 6, 1), chunkSource(2, 4, 6, 9), c(3))
  const d2 = maxDiff(c1.w, c2.w)
  const d3 = maxDiff(c1.w, c3.w)
  t.comment(`LSTM 2 epochs (12 steps): max |Δw| 2 workers ${d2.toExponential(2)}, 3 workers ${d3.toExponential(2)}`)
  t.ok(d2 < 1e-4 && d3 < 1e-4, 'within 1e-4')
})

t.test('sparse soft targets through workers: 1, 2 and 3 workers match the dense run', async (t) => {
  const c = (w: number) =>
    cfg(tmp(), w, { schedule: { ...DEFAULT_NEWBOB, initialLr: 0.3, maxEpochs: 2, minEpochs: 2, fixed: true } })
  const dense = await run(lstm, chunkSource(6, 5, 6, 1), chunkSource(2, 4, 6, 9), c(1))
  const s1 = await run(lstm, chunkSource(6, 5, 6, 1, true), chunkSource(2, 4, 6, 9), c(1))
  const s2 = await run(lstm, chunkSource(6, 5, 6, 1, true), chunkSource(2, 4, 6, 9), c(2))
  const s3 = await run(lstm, chunkSource(6, 5, 6, 1, true), chunkSource(2, 4, 6, 9), c(3))
  const init = lstm()
  const moved = maxDiff(dense.w, init.params.toFlat())
  init.params.dispose()
  const [d1, d2, d3] = [maxDiff(dense.w, s1.w), maxDiff(dense.w, s2.w), maxDiff(dense.w, s3.w)]
  t.comment(
    `LSTM 2 epochs: max |Δw| sparse vs dense, 1/2/3 workers: ${d1.toExponential(2)} ${d2.toExponential(2)} ${d3.toExponential(2)} (training moved weights by ${moved.toFixed(3)})`,
  )
  t.ok(moved > 1e-2, 'training changed the weights')
  t.ok(d1 < 1e-5 && d2 < 1e-4 && d3 < 1e-4, 'sparse = dense within float rounding, on 1, 2 and 3 workers')
  t.ok(
    Math.abs(s2.r.epochs[0].train_loss - dense.r.epochs[0].train_loss) < 1e-4 * dense.r.epochs[0].train_loss,
    'same training loss',
  )
})

t.test('resume with workers: a crash mid-epoch, then --resume, ends with identical weights', async (t) => {
  const ref = dnn2 ? { w: dnn2 } : await run(dnn, frameSource(600, 48, 5), frameSource(150, 50, 0), cfg(tmp(), 2))
  const dir = tmp()
  const src = frameSource(600, 48, 5)
  const breaking: DataSource = {
    async *epoch(e, skip) {
      let k = skip
      for await (const b of src.epoch(e, skip)) {
        if (e === 1 && k === 9) throw new Error('simulated crash')
        yield b
        k++
      }
    },
  }
  const m1 = dnn()
  await t.rejects(
    train(m1, breaking, frameSource(150, 50, 0), cfg(dir, 2)),
    /simulated crash/,
    'the crash surfaces (and the workers are stopped)',
  )
  m1.params.dispose()
  const again = await run(dnn, frameSource(600, 48, 5), frameSource(150, 50, 0), cfg(dir, 2, { resume: true }))
  t.ok(identical(again.w, ref.w), 'identical to the uninterrupted run')
})

t.test('the NaN guard sees a non-finite gradient from a worker part', async (t) => {
  const r = await run(
    dnn,
    frameSource(240, 48, 5, 3),
    frameSource(150, 50, 0),
    cfg(tmp(), 2, { schedule: { ...DEFAULT_NEWBOB, initialLr: 0.5, maxEpochs: 1, minEpochs: 1, fixed: true } }),
  )
  t.equal(r.r.epochs[0].bad_batches, 1, 'one bad batch skipped')
  t.ok(
    Object.values(r.w).every((a) => a.every(Number.isFinite)),
    'weights stay finite',
  )
})

t.test('a failing worker step surfaces as a clear error', async (t) => {
  // Same parameter count and names, other shapes: the replica's forward pass rejects the input.
  const m = dnn()
  const fake: Model = {
    ...m,
    spec: { model: { type: 'dnn', hidden: [16], activation: 'sigmoid' }, inputDim: 2, numClasses: 3, seed: 7 },
  }
  t.equal(buildModel(fake.spec).params.size, m.params.size - 2 * 16, 'a different size fails at start-up instead')
  await t.rejects(train(fake, frameSource(60, 20, 1), frameSource(30, 30, 0), cfg(tmp(), 2)), {
    code: 'worker-failed',
    message: /training worker 1 failed to start: .*parameters/,
  })
  const lin = buildModel({ model: { type: 'dnn', hidden: [] }, inputDim: 4, numClasses: 20, seed: 1 }) // 4·20+20 = 9·10+10 = 100 parameters
  const lin2: Model = {
    ...lin,
    spec: { model: { type: 'dnn', hidden: [], activation: 'sigmoid' }, inputDim: 9, numClasses: 10, seed: 1 },
  }
  const src: DataSource = {
    async *epoch() {
      const labels = tf.tensor1d([0, 1, 2, 3], 'int32')
      yield {
        x: tf.randomNormal([4, 4]),
        labels,
        terms: [{ targets: tf.oneHot(labels, 20).toFloat(), temperature: 1, weight: 1 }],
        rows: 4,
      } as TrainBatch
    },
  }
  await t.rejects(train(lin2, src, src, cfg(tmp(), 2)), {
    code: 'worker-failed',
    message: /training worker 1: .*DNN input: expected \[N, 9\]/,
  })
  m.params.dispose()
  lin.params.dispose()
})
