// Gradient checks of every custom gradient in stages/nn against central finite differences
// (gradcheck.ts), plus exact agreement with tfjs' stock autodiff on reference implementations,
// tensor-leak and repeatability checks. Backend pinned to wasm (the engine's target here).
import t from 'tap'
import * as tf from '@tensorflow/tfjs'
import {
  type Activation,
  type Model,
  type ModelSpecInput,
  activation,
  buildModel,
  custom,
  dense,
  gradCheck,
  gruRecurrence,
  inputGradient,
  lstmRecurrence,
  mulberry32,
  rnnRecurrence,
  selectBackend,
  sgdStep,
  softmaxCrossEntropy,
  sparseSoftmaxCrossEntropy,
} from '../stages/nn/index.js'
import { partGradients } from '../stages/train/loss.js'

const TOL = 1e-3
t.equal(await selectBackend('wasm'), 'wasm')

const r = mulberry32(3)
const rand = (shape: number[], s = 1) =>
  tf.tensor(
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (2 * r() - 1) * s),
    shape,
  )
const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0])

t.test('dense and activations', async (t) => {
  const x = rand([5, 6])
  const W = rand([6, 4])
  const b = rand([4])
  for (const act of ['linear', 'sigmoid', 'tanh', 'relu'] as Activation[]) {
    // relu: a small step so no pre-activation crosses its kink
    const eps = act === 'relu' ? 1e-3 : 1e-2
    const full = gradCheck((x, W, b) => dense(x as tf.Tensor2D, W as tf.Tensor2D, b as tf.Tensor1D, act), [x, W, b], {
      eps,
    })
    t.ok(full.maxRelError <= TOL, `dense ${act}: ${full.maxRelError.toExponential(2)}`)
    const noX = gradCheck(
      (W, b) => dense(x as tf.Tensor2D, W as tf.Tensor2D, b as tf.Tensor1D, act, { inputGrad: false }),
      [W, b],
      { eps },
    )
    t.ok(noX.maxRelError <= TOL, `dense ${act} without dX: ${noX.maxRelError.toExponential(2)}`)
    const a = gradCheck((x) => activation(x, act), [x], { eps })
    t.ok(a.maxRelError <= TOL, `activation ${act}: ${a.maxRelError.toExponential(2)}`)
  }
  // Values: dense equals the plain formula.
  const want = tf.tidy(() => tf.sigmoid(tf.add(tf.matMul(x, W), b)))
  t.ok(maxAbsDiff(dense(x as tf.Tensor2D, W as tf.Tensor2D, b as tf.Tensor1D, 'sigmoid'), want) < 1e-6)
})

t.test('dense input gradient (W·dzᵀ)ᵀ is bit-identical to dz·transpose(W)', async (t) => {
  // The orientation only changes which operand XNNPACK packs; a difference in the last bit here
  // would change every trained model, so the check is exact, on the engine's real shapes too.
  // Its own generator: drawing from the shared one would change the inputs of the later checks.
  const r = mulberry32(11)
  const rand = (shape: number[]) =>
    tf.tensor(
      Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => 2 * r() - 1),
      shape,
    )
  for (const [n, out, inp] of [
    [5, 4, 6],
    [1, 7, 3],
    [128, 512, 512],
    [256, 1000, 512],
    [130, 300, 200],
  ]) {
    const dz = rand([n, out])
    const W = rand([inp, out])
    const got = inputGradient(dz as tf.Tensor2D, W as tf.Tensor2D)
    const want = tf.tidy(() => tf.matMul(dz, tf.transpose(W)))
    t.same(got.shape, [n, inp])
    const g = got.dataSync()
    const w = want.dataSync()
    let differing = 0
    for (let i = 0; i < w.length; i++) if (Object.is(g[i], w[i]) === false) differing++
    t.equal(differing, 0, `[${n}, ${out}]·[${inp}, ${out}]ᵀ: every value bit-identical`)
    tf.dispose([dz, W, got, want])
  }
})

t.test('soft-target cross-entropy', async (t) => {
  const z = rand([7, 5], 2)
  const p = tf.softmax(rand([7, 5], 2))
  const w = tf.tensor([1, 0, 1, 1, 0.5, 0, 1])
  const unnorm = tf.mul(p, 0.8) // top-k targets with tail mass dropped
  for (const [name, f] of [
    ['plain', (z: tf.Tensor) => softmaxCrossEntropy(z, p)],
    ['weighted', (z: tf.Tensor) => softmaxCrossEntropy(z, p, w)],
    ['unnormalised targets', (z: tf.Tensor) => softmaxCrossEntropy(z, unnorm, w)],
    ['3-D logits', (z: tf.Tensor) => softmaxCrossEntropy(tf.reshape(z, [7, 1, 5]), tf.reshape(p, [7, 1, 5]))],
  ] as const) {
    const res = gradCheck(f, [z])
    t.ok(res.maxRelError <= TOL, `${name}: ${res.maxRelError.toExponential(2)}`)
  }
  // Gradient = (softmax − p)/N for normalised targets.
  const g = tf.grad((z: tf.Tensor) => softmaxCrossEntropy(z, p))(z)
  t.ok(maxAbsDiff(g, tf.div(tf.sub(tf.softmax(z), p), 7)) < 1e-6, 'gradient is (softmax − p)/N')
})

t.test('recurrences (forward and reverse)', async (t) => {
  const T = 4
  const B = 3
  const H = 5
  const P = 3
  for (const reverse of [false, true]) {
    const xp = rand([T * B, 4 * H])
    const U = rand([H, 4 * H])
    const peep = rand([3, H])
    const Up = rand([P, 4 * H])
    const Wp = rand([H, P])
    const lstm = (peepholes: boolean, projection?: number) => ({ T, B, H, reverse, peepholes, projection })
    const cases: [string, (...xs: tf.Tensor[]) => tf.Tensor, tf.Tensor[]][] = [
      ['lstm', (a, u) => lstmRecurrence(a, u, null, null, lstm(false)), [xp, U]],
      ['lstm peepholes', (a, u, q) => lstmRecurrence(a, u, q, null, lstm(true)), [xp, U, peep]],
      ['lstmp', (a, u, wp) => lstmRecurrence(a, u, null, wp, lstm(false, P)), [xp, Up, Wp]],
      ['lstmp peepholes', (a, u, q, wp) => lstmRecurrence(a, u, q, wp, lstm(true, P)), [xp, Up, peep, Wp]],
      ['gru', (a, u) => gruRecurrence(a, u, { T, B, H, reverse }), [rand([T * B, 3 * H]), rand([H, 3 * H])]],
      ['rnn', (a, u) => rnnRecurrence(a, u, { T, B, H, reverse }), [rand([T * B, H]), rand([H, H])]],
    ]
    for (const [name, f, inputs] of cases) {
      const res = gradCheck(f, inputs, { directions: 3 })
      t.ok(res.maxRelError <= TOL, `${name}${reverse ? ' reverse' : ''}: ${res.maxRelError.toExponential(2)}`)
    }
  }
})

t.test('one-frame chunks (no recurrent step)', async (t) => {
  const B = 2
  const H = 3
  const o = { T: 1, B, H, reverse: false }
  const lstm = gradCheck(
    (a, u, q) => lstmRecurrence(a, u, q, null, { ...o, peepholes: true }),
    [rand([B, 4 * H]), rand([H, 4 * H]), rand([3, H])],
  )
  t.ok(lstm.maxRelError <= TOL, `lstm T=1: ${lstm.maxRelError.toExponential(2)}`)
  const gru = gradCheck((a, u) => gruRecurrence(a, u, o), [rand([B, 3 * H]), rand([H, 3 * H])])
  t.ok(gru.maxRelError <= TOL, `gru T=1: ${gru.maxRelError.toExponential(2)}`)
  // U gets an exact zero gradient: nothing flows through the recurrence in one frame
  const gU = tf.grad((u: tf.Tensor) => tf.sum(rnnRecurrence(rand([B, H]), u, o)))(rand([H, H]))
  t.same(Array.from(gU.dataSync()), new Array(H * H).fill(0))
})

/** LSTM with stock tfjs ops (stock autodiff): the reference the custom BPTT must equal. */
function refLstm(
  xp: tf.Tensor,
  U: tf.Tensor,
  peep: tf.Tensor | null,
  Wp: tf.Tensor | null,
  T: number,
  B: number,
  H: number,
  reverse: boolean,
) {
  const R = Wp ? Wp.shape[1]! : H
  let h: tf.Tensor = tf.zeros([B, R])
  let c: tf.Tensor = tf.zeros([B, H])
  const outs: tf.Tensor[] = new Array(T)
  const ts = [...Array(T).keys()]
  if (reverse) ts.reverse()
  const col = (m: tf.Tensor, k: number) => tf.slice(m, [0, k * H], [B, H])
  for (const t of ts) {
    const z = tf.add(tf.slice(xp, [t * B, 0], [B, 4 * H]), tf.matMul(h, U))
    const pr = (k: number) =>
      peep ? tf.mul(tf.reshape(tf.slice(peep, [k, 0], [1, H]), [H]), k === 2 ? c : c) : tf.zeros([B, H])
    const i = tf.sigmoid(tf.add(col(z, 0), pr(0)))
    const f = tf.sigmoid(tf.add(col(z, 1), pr(1)))
    const g = tf.tanh(col(z, 3))
    c = tf.add(tf.mul(f, c), tf.mul(i, g))
    const o = tf.sigmoid(tf.add(col(z, 2), pr(2)))
    const m = tf.mul(o, tf.tanh(c))
    h = Wp ? tf.matMul(m, Wp) : m
    outs[t] = h
  }
  return tf.concat(outs, 0)
}

/** GRU with stock ops, written from tfjs-layers' GRUCell.call. */
function refGru(xp: tf.Tensor, U: tf.Tensor, T: number, B: number, H: number, reverse: boolean) {
  let h: tf.Tensor = tf.zeros([B, H])
  const outs: tf.Tensor[] = new Array(T)
  const ts = [...Array(T).keys()]
  if (reverse) ts.reverse()
  for (const t of ts) {
    const xt = tf.slice(xp, [t * B, 0], [B, 3 * H])
    const zr = tf.sigmoid(tf.add(tf.slice(xt, [0, 0], [B, 2 * H]), tf.matMul(h, tf.slice(U, [0, 0], [H, 2 * H]))))
    const z = tf.slice(zr, [0, 0], [B, H])
    const rr = tf.slice(zr, [0, H], [B, H])
    const hh = tf.tanh(
      tf.add(tf.slice(xt, [0, 2 * H], [B, H]), tf.matMul(tf.mul(rr, h), tf.slice(U, [0, 2 * H], [H, H]))),
    )
    h = tf.add(tf.mul(z, h), tf.mul(tf.sub(1, z), hh))
    outs[t] = h
  }
  return tf.concat(outs, 0)
}

t.test('custom BPTT equals stock autodiff', async (t) => {
  const T = 5
  const B = 2
  const H = 4
  const P = 3
  for (const reverse of [false, true]) {
    const xp = rand([T * B, 4 * H])
    const peep = rand([3, H])
    const Wp = rand([H, P])
    const Up = rand([P, 4 * H])
    const dy = rand([T * B, P])
    const opts = { T, B, H, reverse, peepholes: true, projection: P }
    const mine = tf.grads((a: tf.Tensor, u: tf.Tensor, q: tf.Tensor, w: tf.Tensor) => lstmRecurrence(a, u, q, w, opts))(
      [xp, Up, peep, Wp],
      dy,
    )
    const ref = tf.grads((a: tf.Tensor, u: tf.Tensor, q: tf.Tensor, w: tf.Tensor) =>
      refLstm(a, u, q, w, T, B, H, reverse),
    )([xp, Up, peep, Wp], dy)
    t.ok(
      maxAbsDiff(lstmRecurrence(xp, Up, peep, Wp, opts), refLstm(xp, Up, peep, Wp, T, B, H, reverse)) < 1e-6,
      `lstmp+peep forward, reverse=${reverse}`,
    )
    mine.forEach((g, i) => {
      t.ok(maxAbsDiff(g, ref[i]) < 1e-5, `lstmp+peep grad ${i}, reverse=${reverse}: ${maxAbsDiff(g, ref[i])}`)
    })
    const xg = rand([T * B, 3 * H])
    const Ug = rand([H, 3 * H])
    const dyg = rand([T * B, H])
    const gm = tf.grads((a: tf.Tensor, u: tf.Tensor) => gruRecurrence(a, u, { T, B, H, reverse }))([xg, Ug], dyg)
    const gr = tf.grads((a: tf.Tensor, u: tf.Tensor) => refGru(a, u, T, B, H, reverse))([xg, Ug], dyg)
    gm.forEach((g, i) => {
      t.ok(maxAbsDiff(g, gr[i]) < 1e-5, `gru grad ${i}, reverse=${reverse}`)
    })
  }
})

t.test('whole models (bidirectional, stacked, bottleneck)', async (t) => {
  const cfgs: ModelSpecInput['model'][] = [
    { type: 'dnn', hidden: [6, 5], activation: 'sigmoid' },
    { type: 'dnn', hidden: [6], activation: 'tanh' },
    { type: 'lstm', layers: 2, cells: 4, bidirectional: true, peepholes: true },
    { type: 'lstmp', layers: 2, cells: 4, projection: 3, bidirectional: true, bottleneck: 3 },
    { type: 'gru', layers: 2, cells: 4, bidirectional: true },
    { type: 'rnn', layers: 2, cells: 4, bidirectional: true },
  ]
  for (const model of cfgs) {
    const m = buildModel({ model, inputDim: 3, numClasses: 4, seed: 5 })
    const x = m.input === 'frames' ? rand([6, 3]) : rand([2, 3, 3])
    const names = m.params.names
    const res = gradCheck(
      (...ps) => m.apply(x, Object.fromEntries(names.map((n, i) => [n, ps[i]]))),
      names.map((n) => m.params.get(n)),
      { eps: 2e-2 },
    )
    t.ok(res.maxRelError <= TOL, `${JSON.stringify(model)}: ${res.maxRelError.toExponential(2)}`)
    // and through the loss, with a frame mask
    const p = tf.softmax(rand([...m.apply(x).shape]))
    const mask = tf.tensor(
      Array.from({ length: p.size / 4 }, (_, i) => (i % 3 === 1 ? 0 : 1)),
      p.shape.slice(0, -1),
    )
    const viaLoss = gradCheck(
      (...ps) => softmaxCrossEntropy(m.apply(x, Object.fromEntries(names.map((n, i) => [n, ps[i]]))), p, mask),
      names.map((n) => m.params.get(n)),
      { joint: true, directions: 3 },
    )
    t.ok(viaLoss.maxRelError <= TOL, `${model.type} through masked loss: ${viaLoss.maxRelError.toExponential(2)}`)
    m.params.dispose()
  }
})

t.test('checker catches a wrong gradient', async (t) => {
  const wrong = custom(([x]) => ({ value: tf.square(x), gradFunc: (dy) => [tf.mul(dy, x)] })) // should be 2x
  const res = gradCheck((x) => wrong(x), [rand([4, 3])])
  t.ok(res.maxRelError > 0.2, `rel error ${res.maxRelError}`)
})

t.test('no tensor leaks; gradients are repeatable', async (t) => {
  const m = buildModel({
    model: { type: 'lstm', layers: 2, cells: 6, bidirectional: true, peepholes: true },
    inputDim: 5,
    numClasses: 7,
    seed: 2,
  })
  const x = rand([3, 4, 5])
  const p = tf.softmax(rand([3, 4, 7]))
  // the trainer's gradient of a batch (stages/train/loss.ts), soft targets at T = 1
  const lossAndGrads = (m: Model, x: tf.Tensor, p: tf.Tensor) =>
    partGradients(m, { x, terms: [{ temperature: 1, weight: 1, targets: p }], rows: 12 }, 1)
  const step = () => tf.tidy(() => m.params.pack(lossAndGrads(m, x, p).grads))
  step() // warm-up allocations (tfjs caches scalars)
  const before = tf.memory().numTensors
  const g1 = step()
  const g2 = step()
  t.equal(tf.memory().numTensors, before, 'forward+backward under tidy leaves no tensors')
  t.same(Array.from(g2), Array.from(g1), 'calling the gradient twice gives the same result')
  t.ok(
    g1.some((v) => v !== 0),
    'gradients are not all zero',
  )
  // A full SGD step also leaves none, and changes the parameters.
  const w0 = m.params.get('out.W').dataSync().slice()
  const n0 = tf.memory().numTensors
  tf.tidy(() => sgdStep(m.params, lossAndGrads(m, x, p).grads, 0.1))
  t.equal(tf.memory().numTensors, n0, 'SGD step leaks nothing')
  t.not(m.params.get('out.W').dataSync()[0], w0[0])
  // Outside tidy: the caller owns loss and grads, and disposing them is enough.
  const n1 = tf.memory().numTensors
  const res = lossAndGrads(m, x, p)
  tf.dispose([res.value, res.correct, res.counted, ...Object.values(res.grads)])
  t.equal(tf.memory().numTensors, n1, 'partGradients frees its intermediates')
  m.params.dispose()
})

/**
 * Sparse targets for the tests: per frame, k distinct classes with probabilities and one shared
 * probability for the other C − k classes (normalised, so the dense rows sum to 1), and the dense
 * matrix they stand for.
 */
function sparseTargets(n: number, C: number, k: number, seed: number) {
  const g = mulberry32(seed)
  const ids = new Int32Array(n * k)
  const probs = new Float32Array(n * k)
  const rest = new Float32Array(n)
  const dense = new Float32Array(n * C)
  for (let i = 0; i < n; i++) {
    const perm = Array.from({ length: C }, (_, c) => c)
    for (let c = C - 1; c > 0; c--) {
      const j = Math.floor(g() * (c + 1))
      ;[perm[c], perm[j]] = [perm[j], perm[c]]
    }
    const raw = Array.from({ length: k }, () => 0.05 + g())
    const tail = 0.3 * g()
    const s = raw.reduce((a, b) => a + b) + tail
    rest[i] = tail / s / (C - k)
    dense.fill(rest[i], i * C, (i + 1) * C)
    for (let j = 0; j < k; j++) {
      ids[i * k + j] = perm[j]
      probs[i * k + j] = raw[j] / s
      dense[i * C + perm[j]] = probs[i * k + j]
    }
  }
  return { ids, probs, rest, dense }
}

t.test('sparse soft-target cross-entropy: finite differences, and equal to the dense one', async (t) => {
  const n = 7
  const C = 9
  const k = 3
  const sp = sparseTargets(n, C, k, 21)
  const ids = tf.tensor(sp.ids, [n, k], 'int32')
  const probs = tf.tensor(sp.probs, [n, k])
  const rest = tf.tensor(sp.rest, [n])
  const dense = tf.tensor(sp.dense, [n, C])
  const w = tf.tensor([1, 0, 1, 1, 0.5, 0, 1])
  // own random stream: the shared one feeds the other tests their inputs
  const g = mulberry32(77)
  const z = tf.tensor(
    Float32Array.from({ length: n * C }, () => (2 * g() - 1) * 2),
    [n, C],
  )
  const cases = [
    [
      'plain',
      (x: tf.Tensor) => sparseSoftmaxCrossEntropy(x, ids, probs, rest),
      (x: tf.Tensor) => softmaxCrossEntropy(x, dense),
    ],
    [
      'weighted',
      (x: tf.Tensor) => sparseSoftmaxCrossEntropy(x, ids, probs, rest, w),
      (x: tf.Tensor) => softmaxCrossEntropy(x, dense, w),
    ],
    [
      '3-D logits',
      (x: tf.Tensor) =>
        sparseSoftmaxCrossEntropy(
          tf.reshape(x, [n, 1, C]),
          tf.reshape(ids, [n, 1, k]),
          tf.reshape(probs, [n, 1, k]),
          tf.reshape(rest, [n, 1]),
          tf.reshape(w, [n, 1]),
        ),
      (x: tf.Tensor) =>
        softmaxCrossEntropy(tf.reshape(x, [n, 1, C]), tf.reshape(dense, [n, 1, C]), tf.reshape(w, [n, 1])),
    ],
    [
      'no tail (rest 0)',
      (x: tf.Tensor) => sparseSoftmaxCrossEntropy(x, ids, probs, tf.zerosLike(rest), w),
      (x: tf.Tensor) =>
        softmaxCrossEntropy(
          x,
          tf.tidy(() => tf.where(tf.equal(dense, tf.reshape(rest, [n, 1])), tf.zerosLike(dense), dense)),
          w,
        ),
    ],
  ] as const
  for (const [name, sparse, full] of cases) {
    const res = gradCheck(sparse, [z])
    t.ok(res.maxRelError <= TOL, `${name}: finite differences ${res.maxRelError.toExponential(2)}`)
    const [ls, ld, gs, gd] = tf.tidy(() => [sparse(z), full(z), tf.grad(sparse)(z), tf.grad(full)(z)])
    const a = ls.dataSync()[0]
    const b = ld.dataSync()[0]
    t.ok(Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)), `${name}: loss ${a} = dense ${b}`)
    const dg = maxAbsDiff(gs, gd)
    t.ok(dg < 1e-7, `${name}: gradient = dense gradient (max |Δ| ${dg.toExponential(2)})`)
    tf.dispose([ls, ld, gs, gd])
  }
  // no leak, and the gradient can be taken twice
  const before = tf.memory().numTensors
  const g1 = tf.grad((x: tf.Tensor) => sparseSoftmaxCrossEntropy(x, ids, probs, rest, w))(z)
  const g2 = tf.grad((x: tf.Tensor) => sparseSoftmaxCrossEntropy(x, ids, probs, rest, w))(z)
  t.equal(maxAbsDiff(g1, g2), 0, 'same gradient twice')
  tf.dispose([g1, g2])
  t.equal(tf.memory().numTensors, before, 'no tensor leaked')
  t.throws(() => sparseSoftmaxCrossEntropy(z, tf.cast(ids, 'float32'), probs, rest), /ids must be int32/)
  t.throws(
    () => sparseSoftmaxCrossEntropy(z, ids, tf.zeros([n, 2]), rest),
    /probs shape \[7,2\] differs from ids \[7,3\]/,
  )
})
