import * as tf from '@tensorflow/tfjs'
import { epochRandom } from '../stages/train/shuffle.js'
import type { TrainBatch } from '../stages/train/loss.js'
import type { DataSource } from '../stages/train/trainer.js'

/** Three Gaussian blobs in 4-D: a problem a small DNN must learn to > 90%. */
export function blobs(n: number, seed: number): { x: Float32Array; y: Int32Array } {
  const r = epochRandom(seed, 99)
  const x = new Float32Array(n * 4)
  const y = new Int32Array(n)
  for (let i = 0; i < n; i++) {
    const c = i % 3
    y[i] = c
    for (let d = 0; d < 4; d++) x[i * 4 + d] = (d === c ? 2 : 0) + (r() - 0.5) * 1.5
  }
  return { x, y }
}

/**
 * Frame batches of `batch` rows (the last one smaller), shuffled per epoch from `seed`. With
 * `poison`, batch number `poison` of epoch 1 gets a NaN input, in its first or last row (the last
 * row lands in a worker's part when the batch is split).
 */
export function blobSource(
  data: { x: Float32Array; y: Int32Array },
  batch: number,
  seed: number,
  poison?: number,
  poisonAt: 'first' | 'last' = 'first',
): DataSource {
  const n = data.y.length
  return {
    async *epoch(e: number, skip: number) {
      const r = epochRandom(seed, e)
      const order = Array.from({ length: n }, (_, i) => i)
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(r() * (i + 1))
        ;[order[i], order[j]] = [order[j], order[i]]
      }
      let k = 0
      for (let s = 0; s < n; s += batch, k++) {
        if (k < skip) continue
        const idx = order.slice(s, s + batch)
        const x = new Float32Array(idx.length * 4)
        idx.forEach((o, i) => {
          x.set(data.x.subarray(o * 4, o * 4 + 4), i * 4)
        })
        if (poison !== undefined && k === poison && e === 0) x[poisonAt === 'first' ? 0 : x.length - 1] = NaN
        const labels = tf.tensor1d(
          idx.map((o) => data.y[o]),
          'int32',
        )
        const b: TrainBatch = {
          x: tf.tensor2d(x, [idx.length, 4]),
          labels,
          terms: [{ targets: tf.tidy(() => tf.cast(tf.oneHot(labels, 3), 'float32')), temperature: 1, weight: 1 }],
          rows: idx.length,
        }
        yield b
      }
    },
  }
}

/**
 * Stored top-k teacher rows for `frames` frames: per frame a random distribution over C classes
 * (exp(sharpness·u) weights), its k most likely classes (falling) with their log-probabilities,
 * and the tail mass of the other C − k. Draws C numbers from `r` per frame.
 */
export function randomTopkRows(
  frames: number,
  C: number,
  k: number,
  r: () => number,
  sharpness: number,
): { ids: Uint16Array; logp: Float32Array; tail: Float32Array } {
  const ids = new Uint16Array(frames * k)
  const logp = new Float32Array(frames * k)
  const tail = new Float32Array(frames)
  for (let f = 0; f < frames; f++) {
    const raw = Array.from({ length: C }, () => Math.exp(sharpness * r()))
    const s = raw.reduce((a, b) => a + b)
    const top = raw
      .map((_, c) => c)
      .sort((a, b) => raw[b] - raw[a])
      .slice(0, k)
    top.forEach((c, j) => {
      ids[f * k + j] = c
      logp[f * k + j] = Math.log(raw[c] / s)
    })
    tail[f] = 1 - top.reduce((a, c) => a + raw[c] / s, 0)
  }
  return { ids, logp, tail }
}
