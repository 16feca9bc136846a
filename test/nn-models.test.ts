// Models, registry, parameters, backend selection, wasm kernel patches and export to tfjs-layers.
import t from 'tap'
import * as tf from '@tensorflow/tfjs'
import {
  KtpLSTM,
  type ModelSpecInput,
  buildModel,
  glorotUniform,
  mulberry32,
  permuteColumnBlocks,
  selectBackend,
  sgdStep,
  softmaxCrossEntropy,
  toLayersModel,
} from '../stages/nn/index.js'

t.equal(await selectBackend('auto'), 'wasm', 'auto falls back to wasm when tfjs-node is not installed')
t.equal(tf.getBackend(), 'wasm')
t.equal(tf.env().getBool('WASM_HAS_SIMD_SUPPORT'), true, 'wasm runs the SIMD build')
t.equal(tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT'), false, 'and not the pthreads build (no threads under Node)')

const r = mulberry32(11)
const rand = (shape: number[], s = 1) =>
  tf.tensor(
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (2 * r() - 1) * s),
    shape,
  )
const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0])

const CONFIGS: ModelSpecInput['model'][] = [
  { type: 'dnn', hidden: [7, 6], activation: 'sigmoid' },
  { type: 'dnn', hidden: [8], activation: 'relu' },
  { type: 'dnn', hidden: [8], activation: 'tanh' },
  { type: 'lstm', layers: 2, cells: 5 },
  { type: 'lstm', layers: 1, cells: 5, bidirectional: true, bottleneck: 4 },
  { type: 'lstm', layers: 2, cells: 5, peepholes: true, bidirectional: true },
  { type: 'lstmp', layers: 2, cells: 5, projection: 3 },
  { type: 'lstmp', layers: 1, cells: 5, projection: 3, peepholes: true, bidirectional: true },
  { type: 'gru', layers: 2, cells: 5, bidirectional: true },
  { type: 'gru', layers: 1, cells: 5 },
  { type: 'rnn', layers: 1, cells: 5 },
  { type: 'rnn', layers: 2, cells: 5, bidirectional: true, bottleneck: 3 },
]

t.test('backend selection', async (t) => {
  await t.rejects(selectBackend('bogus' as 'cpu'), /expected --backend one of auto\|tensorflow\|wasm\|cpu, got bogus/)
  await t.rejects(
    selectBackend('tensorflow'),
    /--backend tensorflow/,
    'explicit tensorflow fails loudly when not installed',
  )
  t.equal(tf.getBackend(), 'wasm', 'a failed request leaves the backend as it was')
})

t.test('registry validates configs', async (t) => {
  const bad: [unknown, RegExp][] = [
    [{ type: 'lstmp', layers: 1, cells: 4 }, /projection: expected projection > 0 for type lstmp/],
    [{ type: 'gru', cells: 4, peepholes: true }, /peepholes: peepholes apply to lstm\/lstmp only, got type gru/],
    [{ type: 'lstm', cells: 4, projection: 2 }, /projection applies to lstmp only/],
    [{ type: 'dnn', hidden: [0] }, /hidden/],
    [{ type: 'cnn', cells: 3 }, /model/],
  ]
  for (const [model, re] of bad) {
    t.throws(() => buildModel({ model: model as ModelSpecInput['model'], inputDim: 3, numClasses: 2 }), re)
  }
  t.throws(() => buildModel({ model: { type: 'dnn', hidden: [] }, inputDim: 0, numClasses: 2 }), /inputDim/)
  const m = buildModel({ model: { type: 'lstm', cells: 3 }, inputDim: 2, numClasses: 2 })
  t.same(
    m.spec.model,
    { type: 'lstm', layers: 1, cells: 3, peepholes: false, bidirectional: false },
    'defaults filled in',
  )
  t.equal(m.spec.seed, 1)
  t.throws(() => m.apply(tf.zeros([2, 2])), /expected \[batch, time, 2\], got \[2,2\]/)
  m.params.dispose()
})

t.test('deterministic initialisation and parameter layout', async (t) => {
  const spec = {
    model: { type: 'lstm', layers: 1, cells: 4, peepholes: true } as const,
    inputDim: 3,
    numClasses: 5,
    seed: 7,
  }
  const a = buildModel(spec)
  const b = buildModel(spec)
  const c = buildModel({ ...spec, seed: 8 })
  t.same(a.params.names, ['l0.fw.Wx', 'l0.fw.b', 'l0.fw.U', 'l0.fw.peep', 'out.W', 'out.b'])
  const fa = a.params.toFlat()
  t.same(fa, b.params.toFlat(), 'same seed, same weights')
  t.not(fa['l0.fw.Wx'][0], c.params.toFlat()['l0.fw.Wx'][0], 'different seed, different weights')
  // Forget-gate bias 1 (internal gate order i, f, o, g), other biases zero.
  t.same(Array.from(fa['l0.fw.b']), [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
  t.same(Array.from(fa['out.b']), [0, 0, 0, 0, 0])
  // Glorot-uniform bounds and spread: limit sqrt(6 / (3 + 16)).
  const lim = Math.sqrt(6 / 19)
  t.ok(fa['l0.fw.Wx'].every((v) => Math.abs(v) <= lim))
  const big = glorotUniform(200, 300, 1)
  const l2 = Math.sqrt(6 / 500)
  const mean = big.reduce((s, v) => s + v, 0) / big.length
  const varc = big.reduce((s, v) => s + (v - mean) ** 2, 0) / big.length
  t.ok(
    Math.abs(mean) < 0.01 * l2 && Math.abs(varc / ((l2 * l2) / 3) - 1) < 0.02,
    `glorot mean ${mean}, var ratio ${varc / ((l2 * l2) / 3)}`,
  )
  // Flat layout: offsets are contiguous, pack/unpack round-trips.
  t.equal(a.params.size, 3 * 16 + 16 + 4 * 16 + 12 + 4 * 5 + 5)
  t.same(
    a.params.layout.map((s) => s.offset),
    [0, 48, 64, 128, 140, 160],
  )
  const packed = a.params.pack(a.params.tensors())
  const un = a.params.unpack(packed)
  t.same(Array.from(un['l0.fw.peep'].dataSync()), Array.from(fa['l0.fw.peep']))
  tf.dispose(Object.values(un))
  // into a SharedArrayBuffer (what gradient averaging between workers will use)
  const shared = new Float32Array(new SharedArrayBuffer(4 * a.params.size))
  a.params.pack(a.params.tensors(), shared)
  t.same(Array.from(shared), Array.from(packed))
  // loadFlat: c takes a's values, then forward outputs agree; errors name the parameter.
  c.params.loadFlat(fa)
  const x = rand([2, 3, 3])
  t.equal(maxAbsDiff(a.apply(x), c.apply(x)), 0)
  t.throws(
    () => c.params.loadFlat({ ...fa, 'out.b': new Float32Array(4) }),
    /parameter out.b: expected 5 values, got 4/,
  )
  const { 'out.W': _drop, ...missing } = fa
  t.throws(() => c.params.loadFlat(missing), /checkpoint lacks parameter out.W/)
  t.throws(() => c.params.loadFlat({ ...fa, extra: new Float32Array(1) }), /unknown parameters: extra/)
  for (const m of [a, b, c]) m.params.dispose()
  // building and disposing a model leaves no tensors and no bytes behind
  const mem0 = tf.memory()
  buildModel({
    model: { type: 'lstmp', cells: 4, projection: 2, bidirectional: true },
    inputDim: 3,
    numClasses: 5,
  }).params.dispose()
  t.equal(tf.memory().numTensors, mem0.numTensors)
  t.equal(tf.memory().numBytes, mem0.numBytes)
})

t.test('sgd step and cross-entropy values', async (t) => {
  const m = buildModel({ model: { type: 'dnn', hidden: [] }, inputDim: 2, numClasses: 2, seed: 3 })
  const W0 = m.params.toFlat()['out.W']
  const g = {
    'out.W': tf.tensor([
      [1, 2],
      [3, 4],
    ]),
    'out.b': tf.tensor([1, -1]),
  }
  sgdStep(m.params, g, 0.5)
  const f = m.params.toFlat()
  t.same(
    Array.from(f['out.W']).map((v, i) => +(W0[i] - v).toFixed(6)),
    [0.5, 1, 1.5, 2],
  )
  t.same(Array.from(f['out.b']), [-0.5, 0.5])
  // CE by hand: z = [0, ln 3] → q = [1/4, 3/4]; p = [0.5, 0.5] → −(0.5 ln .25 + 0.5 ln .75)
  const z = tf.tensor([
    [0, Math.log(3)],
    [0, 0],
  ])
  const p = tf.tensor([
    [0.5, 0.5],
    [1, 0],
  ])
  const f0 = -(0.5 * Math.log(0.25) + 0.5 * Math.log(0.75))
  const f1 = -Math.log(0.5)
  t.ok(Math.abs(softmaxCrossEntropy(z, p).dataSync()[0] - (f0 + f1) / 2) < 1e-6, 'averaged over frames')
  t.ok(Math.abs(softmaxCrossEntropy(z, p, tf.tensor([1, 0])).dataSync()[0] - f0) < 1e-6, 'masked frame ignored')
  t.ok(Math.abs(softmaxCrossEntropy(z, p, tf.tensor([1, 3])).dataSync()[0] - (f0 + 3 * f1) / 4) < 1e-6, 'weighted mean')
  t.equal(softmaxCrossEntropy(z, p, tf.tensor([0, 0])).dataSync()[0], 0, 'empty mask gives 0, not NaN')
  // large logits stay finite (log-sum-exp is shifted)
  t.ok(Math.abs(softmaxCrossEntropy(tf.tensor([[1000, 0]]), tf.tensor([[0, 1]])).dataSync()[0] - 1000) < 1e-3)
  t.throws(() => softmaxCrossEntropy(z, tf.zeros([2, 3])), /targets shape \[2,3\] differs from logits \[2,2\]/)
  m.params.dispose()
})

t.test('wasm kernel patches: Slice, Transpose and Identity give stock results', async (t) => {
  const x = rand([4, 5, 6])
  const cases: [number[], number[]][] = [
    [
      [1, 0, 0],
      [2, 5, 6],
    ], // contiguous
    [
      [0, 1, 2],
      [4, 3, 3],
    ], // strided 3-D
    [
      [2, 4, 5],
      [1, 1, 1],
    ],
    [
      [0, 0, 0],
      [-1, 2, -1],
    ],
  ]
  const wasmOut = cases.map(([b, s]) => Array.from(tf.slice(x, b, s).dataSync()))
  // transposes: 2-D (odd sizes cross the 32-blocks), the [1,0,2] fast path, and one left to stock
  const m = rand([37, 70])
  const perms = [
    [1, 0, 2],
    [2, 1, 0],
    [0, 2, 1],
  ]
  const wasmT = [Array.from(tf.transpose(m).dataSync()), ...perms.map((p) => Array.from(tf.transpose(x, p).dataSync()))]
  const vals = x.arraySync()
  const mvals = m.arraySync()
  await selectBackend('cpu')
  const xc = tf.tensor(vals)
  cases.forEach(([b, s], i) => {
    t.same(wasmOut[i], Array.from(tf.slice(xc, b, s).dataSync()), `slice ${b} ${s}`)
  })
  t.same(wasmT[0], Array.from(tf.transpose(tf.tensor(mvals)).dataSync()), 'transpose 37×70')
  perms.forEach((p, i) => {
    t.same(wasmT[i + 1], Array.from(tf.transpose(xc, p).dataSync()), `transpose perm ${p}`)
  })
  await selectBackend('wasm')
  const y = tf.tensor([1, 2, 3])
  const z = tf.clone(y)
  y.dispose()
  t.same(Array.from(z.dataSync()), [1, 2, 3], 'a clone outlives its source')
  const v = tf.variable(tf.tensor([1, 2]))
  const before = tf.clone(v)
  v.assign(tf.tensor([5, 6]))
  t.same(Array.from(before.dataSync()), [1, 2], 'assign does not write through a clone')
})

t.test('forward values agree between wasm and cpu', async (t) => {
  for (const model of CONFIGS) {
    const spec = { model, inputDim: 4, numClasses: 6, seed: 9 }
    const m = buildModel(spec)
    const xs = m.input === 'frames' ? rand([5, 4]) : rand([3, 6, 4])
    const xv = xs.arraySync()
    const onWasm = m.apply(xs).arraySync()
    await selectBackend('cpu')
    const mc = buildModel(spec)
    const diff = maxAbsDiff(mc.apply(tf.tensor(xv)), tf.tensor(onWasm as number[]))
    t.ok(diff < 1e-5, `${JSON.stringify(model)}: |wasm − cpu| = ${diff}`)
    mc.params.dispose()
    await selectBackend('wasm')
    m.params.dispose()
  }
})

t.test('export to tfjs-layers gives the same outputs', async (t) => {
  for (const model of CONFIGS) {
    const m = buildModel({ model, inputDim: 4, numClasses: 6, seed: 4 })
    const x = m.input === 'frames' ? rand([5, 4]) : rand([3, 7, 4])
    const ours = m.apply(x)
    const seq = toLayersModel(m)
    const theirs = seq.predict(x) as tf.Tensor
    t.same(theirs.shape, ours.shape, `${model.type} shape`)
    const d = maxAbsDiff(ours, theirs)
    t.ok(d <= 1e-4, `${JSON.stringify(model)}: max |Δ| = ${d}`)
    // softmax head gives posteriors of the same logits
    const post = toLayersModel(m, { softmax: true }).predict(x) as tf.Tensor
    t.ok(maxAbsDiff(post, tf.softmax(ours)) <= 1e-5, `${model.type} softmax head`)
    m.params.dispose()
  }
})

t.test('save/load round trip, including the custom KtpLSTM layer', async (t) => {
  for (const model of [
    { type: 'lstmp', layers: 2, cells: 5, projection: 3, peepholes: true, bidirectional: true, bottleneck: 4 },
    { type: 'gru', layers: 1, cells: 5, bidirectional: true },
    { type: 'dnn', hidden: [6], activation: 'tanh' },
  ] as ModelSpecInput['model'][]) {
    const m = buildModel({ model, inputDim: 4, numClasses: 6, seed: 2 })
    const x = m.input === 'frames' ? rand([5, 4]) : rand([2, 9, 4])
    let saved: tf.io.ModelArtifacts | undefined
    await toLayersModel(m).save(
      tf.io.withSaveHandler(async (a) => {
        saved = a
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }
      }),
    )
    // JSON round trip of the topology, as a file on disk would do.
    const artifacts = { ...saved!, modelTopology: JSON.parse(JSON.stringify(saved!.modelTopology)) }
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts))
    const d = maxAbsDiff(m.apply(x), loaded.predict(x) as tf.Tensor)
    t.ok(d <= 1e-4, `${model.type}: loaded model max |Δ| = ${d}`)
    if (model.type === 'lstmp') {
      t.match(JSON.stringify(saved!.modelTopology), /"class_name":"KtpLSTM"/)
      const layer = loaded.layers[0] as KtpLSTM
      t.ok(layer instanceof KtpLSTM)
      t.match(layer.getConfig(), { units: 5, projection: 3, peepholes: true, bidirectional: true })
      t.same(layer.computeOutputShape([null, 9, 4]), [null, 9, 6])
    }
    m.params.dispose()
  }
})

t.test('LSTM gate reordering for tfjs', async (t) => {
  // one row, blocks [i f o g] → [i f g o]
  const v = Float32Array.from([1, 1, 2, 2, 3, 3, 4, 4])
  t.same(Array.from(permuteColumnBlocks(v, 1, 2, [0, 1, 3, 2])), [1, 1, 2, 2, 4, 4, 3, 3])
  const two = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8])
  t.same(Array.from(permuteColumnBlocks(two, 2, 1, [0, 1, 3, 2])), [1, 2, 4, 3, 5, 6, 8, 7])
})
