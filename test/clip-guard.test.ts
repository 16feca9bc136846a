import t from 'tap'
import * as tf from '@tensorflow/tfjs'
import { mulberry32, selectBackend } from '../stages/nn/index.js'
import { clipAndGuard } from '../stages/train/optimizer.js'

/**
 * Global-norm clipping and the NaN/Inf guard (stages/train/optimizer.ts). It avoids tf.where's
 * Tile broadcast (slow on wasm): on wasm it reads the finite flag, elsewhere it broadcasts the flag
 * with an add. Either way the result must equal, bit for bit, the plain definition:
 * g·min(1, clip/‖g‖) when ‖g‖ is finite, all zeros otherwise.
 */
await selectBackend('wasm')

const r = mulberry32(7)
const rand = (shape: number[], s: number) =>
  tf.tensor(
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (2 * r() - 1) * s),
    shape,
  )

function reference(grads: Record<string, tf.Tensor>, clip: number): Record<string, tf.Tensor> {
  return tf.tidy(() => {
    const names = Object.keys(grads)
    const norm = tf.sqrt(tf.addN(names.map((n) => tf.sum(tf.square(grads[n])))))
    const finite = tf.isFinite(norm)
    const scale = clip > 0 ? tf.minimum(1, tf.div(clip, tf.maximum(norm, 1e-12))) : tf.scalar(1)
    const out: Record<string, tf.Tensor> = {}
    for (const n of names) out[n] = tf.where(finite, tf.mul(grads[n], scale), tf.zerosLike(grads[n]))
    return out
  })
}

function bitsDiffer(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync()
  const y = b.dataSync()
  let d = 0
  for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) d++
  return d
}

// wasm reads the finite flag and skips the select; other backends (cpu here) keep it on the device.
for (const backend of ['wasm', 'cpu'])
  t.test(`${backend}: clipAndGuard equals the plain definition bit for bit; gate and norm`, async (t) => {
    t.ok(await tf.setBackend(backend), `backend ${backend}`)
    const cases: Array<{ what: string; poison?: number; clip: number; gate: number }> = [
      { what: 'finite, no clipping', clip: 0, gate: 1 },
      { what: 'finite, clipped (norm > clip)', clip: 0.5, gate: 1 },
      { what: 'finite, clip above the norm', clip: 1e6, gate: 1 },
      { what: 'one Inf', poison: Number.POSITIVE_INFINITY, clip: 1, gate: 0 },
      { what: 'one NaN', poison: Number.NaN, clip: 0, gate: 0 },
    ]
    for (const c of cases) {
      const grads: Record<string, tf.Tensor> = { W: rand([37, 19], 0.3), b: rand([19], 0.3), v: rand([5, 4, 3], 2) }
      if (c.poison !== undefined) {
        const v = grads.W.dataSync().slice()
        v[11] = c.poison
        grads.W.dispose()
        grads.W = tf.tensor(v, [37, 19])
      }
      const want = reference(grads, c.clip)
      const got = clipAndGuard(grads, c.clip)
      for (const n of Object.keys(grads)) {
        t.equal(bitsDiffer(got.grads[n], want[n]), 0, `${c.what}: ${n} bit-identical`)
        t.same(got.grads[n].shape, grads[n].shape)
      }
      t.equal(got.gate.dataSync()[0], c.gate, `${c.what}: gate ${c.gate}`)
      if (c.gate === 0)
        t.equal(
          tf.tidy(() => tf.sum(tf.abs(got.grads.W)).dataSync()[0]),
          0,
          `${c.what}: zeros`,
        )
      else {
        const norm = got.norm.dataSync()[0]
        t.ok(norm > 1, `${c.what}: norm ${norm} (the clip cases need it above 0.5)`)
        const clippedNorm = tf.tidy(() =>
          Math.sqrt(Object.values(got.grads).reduce((s, g) => s + tf.sum(tf.square(g)).dataSync()[0], 0)),
        )
        const expected = c.clip > 0 ? Math.min(norm, c.clip) : norm
        t.ok(Math.abs(clippedNorm - expected) < 1e-4 * expected, `${c.what}: ‖clipped‖ ${clippedNorm} ≈ ${expected}`)
      }
      tf.dispose([...Object.values(grads), ...Object.values(want), ...Object.values(got.grads), got.gate, got.norm])
    }
  })
