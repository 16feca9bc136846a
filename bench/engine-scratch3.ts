// min-of-many single-step times (robust to a shared, loaded machine)
import * as tf from '@tensorflow/tfjs'
import { selectBackend } from '../stages/nn/backend.js'
import { sgdStep } from '../stages/nn/params.js'
import { buildModel, lossAndGrads } from '../stages/nn/registry.js'
await selectBackend('wasm')
const which = process.argv[2] ?? 'both'
function minStep(f: () => void, n: number) { for (let i = 0; i < 3; i++) f(); let best = 1e9; for (let i = 0; i < n; i++) { const t = performance.now(); f(); best = Math.min(best, performance.now() - t) } return best }
if (which !== 'lstm') {
  const m = buildModel({ model: { type: 'dnn', hidden: [512, 512, 512, 512], activation: 'sigmoid' }, inputDim: 440, numClasses: 1000 })
  const x = tf.randomNormal([256, 440]), p = tf.softmax(tf.randomNormal([256, 1000]))
  const ms = minStep(() => tf.tidy(() => { const { grads } = lossAndGrads(m, x, p); sgdStep(m.params, grads, 0.01) }), 40)
  const a = tf.randomNormal([256, 512]), w = tf.randomNormal([512, 512])
  const g = minStep(() => tf.tidy(() => { tf.matMul(a, tf.add(w, 0)) }), 40)
  console.log(`dnn step ${ms.toFixed(1)} ms = ${(256 / ms * 1000).toFixed(0)} frames/s; gemm 256x512x512 ${g.toFixed(2)} ms; step/gemm-units ${(ms / g).toFixed(1)} (GEMM-only ≈ ${(2.22e9 / (2 * 256 * 512 * 512) ).toFixed(1)})`)
}
if (which !== 'dnn') {
  const m = buildModel({ model: { type: 'lstm', layers: 1, cells: 256 }, inputDim: 40, numClasses: 1000 })
  const x = tf.randomNormal([16, 20, 40]), p = tf.softmax(tf.randomNormal([16, 20, 1000]))
  const ms = minStep(() => tf.tidy(() => { const { grads } = lossAndGrads(m, x, p); sgdStep(m.params, grads, 0.01) }), 40)
  const fwd = minStep(() => tf.tidy(() => { m.apply(x) }), 40)
  console.log(`lstm step ${ms.toFixed(1)} ms = ${(320 / ms * 1000).toFixed(0)} frames/s; forward only ${fwd.toFixed(1)} ms`)
}
