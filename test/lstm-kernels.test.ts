// The fused plain-LSTM layer (stages/nn/lstm-layer.ts + lstm-kernels.ts) against the tfjs-op path
// it replaces (dense + lstmRecurrence): both step kernels, and the outputs and every gradient of
// whole layers, bit for bit (so a model trained either way is the same bytes; the weight gradients
// of both parts come from one GEMM here, whose rows are independent dot products in the same
// order), a finite-difference gradient check, no leaked tensors, and the fallback off wasm.
import t from 'tap'
import * as tf from '@tensorflow/tfjs'
import {
  dense,
  fusedLstmAvailable,
  gradCheck,
  lstmCellBackward,
  lstmCellForward,
  lstmLayer,
  lstmRecurrence,
  mulberry32,
  selectBackend,
} from '../stages/nn/index.js'

t.equal(await selectBackend('wasm'), 'wasm')

const r = mulberry32(11)
const rand = (shape: number[], s = 1) =>
  tf.tensor(
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (2 * r() - 1) * s),
    shape,
  )
const maxAbs = (a: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(a)).dataSync()[0])
const bits = (a: tf.Tensor) => Array.from(new Uint32Array(Float32Array.from(a.dataSync()).buffer))

interface Case {
  T: number
  B: number
  H: number
  D: number
  reverse: boolean
  inputGrad: boolean
}

/** Layer output and the gradients of Σ R⊙y w.r.t. [x?, Wx, b, U], fused or tfjs-op path. */
function run(c: Case, ins: tf.Tensor[], R: tf.Tensor, fused: boolean): { y: tf.Tensor; grads: tf.Tensor[] } {
  const [x, ...ws] = ins
  const o = { T: c.T, B: c.B, H: c.H, reverse: c.reverse }
  const layer = (xi: tf.Tensor, Wx: tf.Tensor, b: tf.Tensor, U: tf.Tensor) =>
    fused
      ? lstmLayer(xi as tf.Tensor2D, Wx as tf.Tensor2D, b as tf.Tensor1D, U as tf.Tensor2D, {
          ...o,
          inputGrad: c.inputGrad,
        })
      : lstmRecurrence(
          dense(xi as tf.Tensor2D, Wx as tf.Tensor2D, b as tf.Tensor1D, 'linear', { inputGrad: c.inputGrad }),
          U,
          null,
          null,
          { ...o, peepholes: false },
        )
  const loss = c.inputGrad
    ? (xi: tf.Tensor, Wx: tf.Tensor, b: tf.Tensor, U: tf.Tensor) => tf.sum(tf.mul(layer(xi, Wx, b, U), R))
    : (Wx: tf.Tensor, b: tf.Tensor, U: tf.Tensor) => tf.sum(tf.mul(layer(x, Wx, b, U), R))
  const grads = tf.grads(loss as (...a: tf.Tensor[]) => tf.Tensor)(c.inputGrad ? ins : ws)
  return { y: tf.tidy(() => layer(x, ws[0], ws[1], ws[2])), grads }
}

const CASES: Case[] = []
for (const [T, B, H, D] of [
  [5, 3, 4, 6],
  [1, 2, 3, 5],
  [20, 16, 32, 40],
  [7, 1, 8, 3],
]) {
  for (const reverse of [false, true]) {
    for (const inputGrad of [true, false]) CASES.push({ T, B, H, D, reverse, inputGrad })
  }
}

t.test('fused step kernels match the tfjs ops they replace', async (t) => {
  t.ok(fusedLstmAvailable(), 'fused kernels are registered on wasm')
  const B = 5
  const H = 7
  const xp = rand([3 * B, 4 * H], 3)
  const hU = rand([B, 4 * H], 2)
  const cPrev = rand([B, H], 2)
  for (const first of [true, false]) {
    const s = lstmCellForward(xp, B, B, first ? null : hU, first ? null : cPrev)
    const z = tf.tidy(() => {
      const xt = tf.slice(xp, [B, 0], [B, 4 * H])
      return first ? xt : tf.add(xt, hU)
    })
    const sig = tf.sigmoid(tf.slice(z, [0, 0], [B, 3 * H]))
    t.same(bits(tf.slice(s.gates, [0, 0], [B, 3 * H])), bits(sig), `σ(i, f, o) bit-identical (first=${first})`)
    const g = tf.tanh(tf.slice(z, [0, 3 * H], [B, H]))
    t.same(bits(tf.slice(s.gates, [0, 3 * H], [B, H])), bits(g), `tanh(g) bit-identical (first=${first})`)
    // c, tanh c and h from the kernel's own gates with the tfjs ops of recurrence.ts
    const [ig, fg, og, gg] = [0, 1, 2, 3].map((k) => tf.slice(s.gates, [0, k * H], [B, H]))
    const c = first ? tf.mul(ig, gg) : tf.add(tf.mul(fg, cPrev), tf.mul(ig, gg))
    t.same(bits(s.c), bits(c), 'c bit-identical')
    t.same(bits(s.tc), bits(tf.tanh(c)), 'tanh(c) bit-identical')
    t.same(bits(s.h), bits(tf.mul(og, s.tc)), 'h = o⊙tanh(c) bit-identical')
  }
  // Backward: the formulas of lstmRecurrence's gradFunc on the same saved values, bit for bit.
  const gates = tf.concat([tf.sigmoid(rand([B, 3 * H], 3)), tf.tanh(rand([B, H], 3))], 1)
  const tc = tf.tanh(rand([B, H], 2))
  const dy = rand([3 * B, H])
  const dhRec = rand([B, H])
  const dcNext = rand([B, H])
  for (const [name, hasRec, hasPrev] of [
    ['middle step', true, true],
    ['last processed step', false, true],
    ['first processed step', true, false],
    ['only step', false, false],
  ] as const) {
    const got = lstmCellBackward(
      dy,
      2 * B,
      { gates, tc },
      hasRec ? dhRec : null,
      hasPrev ? cPrev : null,
      hasRec ? dcNext : null,
    )
    const one = tf.scalar(1)
    const [ig, fg, og, g] = [0, 1, 2, 3].map((k) => tf.slice(gates, [0, k * H], [B, H]))
    const sifo = tf.slice(gates, [0, 0], [B, 3 * H])
    let dh = tf.slice(dy, [2 * B, 0], [B, H])
    if (hasRec) dh = tf.add(dh, dhRec)
    const dO = tf.mul(dh, tc)
    let dc = tf.mul(tf.mul(dh, og), tf.sub(one, tf.square(tc)))
    if (hasRec) dc = tf.add(dc, dcNext)
    const dF = hasPrev ? tf.mul(dc, cPrev) : tf.zerosLike(dc)
    const dS = tf.mul(tf.concat([tf.mul(dc, g), dF, dO], 1), tf.mul(sifo, tf.sub(one, sifo)))
    const dzg = tf.mul(tf.mul(dc, ig), tf.sub(one, tf.square(g)))
    t.same(bits(got.dz), bits(tf.concat([dS, dzg], 1)), `dz bit-identical (${name})`)
    t.same(bits(got.dcf), bits(tf.mul(dc, fg)), `dc⊙f bit-identical (${name})`)
  }
})

t.test('fused layer = dense + lstmRecurrence: outputs and all gradients', async (t) => {
  for (const c of CASES) {
    const label = `T=${c.T} B=${c.B} H=${c.H} D=${c.D}${c.reverse ? ' reverse' : ''}${c.inputGrad ? '' : ' no dX'}`
    const ins = [rand([c.T * c.B, c.D]), rand([c.D, 4 * c.H], 0.5), rand([4 * c.H], 0.5), rand([c.H, 4 * c.H], 0.5)]
    const R = rand([c.T * c.B, c.H])
    const before = tf.memory().numTensors
    const fused = run(c, ins, R, true)
    const leaked = tf.memory().numTensors - before - 1 - fused.grads.length
    const ref = run(c, ins, R, false)
    t.equal(leaked, 0, `${label}: no tensors leaked`)
    t.same(bits(fused.y), bits(ref.y), `${label}: outputs bit-identical`)
    t.equal(fused.grads.length, ref.grads.length)
    const names = c.inputGrad ? ['dx', 'dWx', 'db', 'dU'] : ['dWx', 'db', 'dU']
    fused.grads.forEach((g, i) => {
      t.same(g.shape, ref.grads[i].shape, `${label}: ${names[i]} shape`)
      t.same(bits(g), bits(ref.grads[i]), `${label}: ${names[i]} bit-identical to the tfjs-op path`)
    })
    if (c.T === 1) t.equal(maxAbs(fused.grads[names.indexOf('dU')]), 0, `${label}: dU = 0 with one frame`)
    tf.dispose([fused.y, ref.y, ...fused.grads, ...ref.grads, ...ins, R])
  }
})

t.test('fused layer: finite-difference gradient check', async (t) => {
  for (const [T, reverse] of [
    [4, false],
    [4, true],
    [1, false],
  ] as const) {
    const B = 3
    const H = 4
    const D = 5
    const o = { T, B, H, reverse }
    const res = gradCheck(
      (x, Wx, b, U) =>
        lstmLayer(x as tf.Tensor2D, Wx as tf.Tensor2D, b as tf.Tensor1D, U as tf.Tensor2D, { ...o, inputGrad: true }),
      [rand([T * B, D]), rand([D, 4 * H]), rand([4 * H]), rand([H, 4 * H])],
      { directions: 3 },
    )
    t.ok(res.maxRelError <= 1e-3, `T=${T}${reverse ? ' reverse' : ''}: ${res.maxRelError.toExponential(2)}`)
  }
})

t.test('off wasm the layer is the tfjs-op path, bit for bit', async (t) => {
  t.equal(await selectBackend('cpu'), 'cpu')
  t.notOk(fusedLstmAvailable(), 'no fused kernels on cpu')
  const c: Case = { T: 5, B: 3, H: 4, D: 6, reverse: true, inputGrad: true }
  const ins = [rand([c.T * c.B, c.D]), rand([c.D, 4 * c.H]), rand([4 * c.H]), rand([c.H, 4 * c.H])]
  const R = rand([c.T * c.B, c.H])
  const a = run(c, ins, R, true)
  const b = run(c, ins, R, false)
  t.same(bits(a.y), bits(b.y), 'outputs')
  a.grads.forEach((g, i) => {
    t.same(bits(g), bits(b.grads[i]), `gradient ${i}`)
  })
  t.equal(await selectBackend('wasm'), 'wasm')
})
