// The TDNN student (stages/nn/models/tdnn.ts): forward values against a per-frame reference,
// gradients against finite differences (the model alone and through the masked loss), chunk edges,
// deterministic initialisation, wasm = cpu, and no tfjs-layers export.
import t from 'tap'
import * as tf from '@tensorflow/tfjs'
import {
  type Model,
  type ModelConfig,
  type ModelSpecInput,
  buildModel,
  gradCheck,
  mulberry32,
  selectBackend,
  softmaxCrossEntropy,
  toLayersModel,
} from '../stages/nn/index.js'

const TOL = 1e-3
t.equal(await selectBackend('wasm'), 'wasm')

const r = mulberry32(23)
const rand = (shape: number[], s = 1) =>
  tf.tensor(
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (2 * r() - 1) * s),
    shape,
  )
const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0])
type TdnnInput = Partial<Extract<ModelSpecInput['model'], { type: 'tdnn' }>>
type TdnnConfig = Extract<ModelConfig, { type: 'tdnn' }>
const tdnn = (model: TdnnInput, seed = 5) =>
  buildModel({
    model: {
      type: 'tdnn',
      hidden: [5, 4],
      offsets: [
        [-2, 0, 1],
        [-1, 1],
      ],
      activation: 'sigmoid',
      ...model,
    },
    inputDim: 3,
    numClasses: 4,
    seed,
  })
const withParams =
  (m: Model, x: tf.Tensor) =>
  (...ps: tf.Tensor[]) =>
    m.apply(x, Object.fromEntries(m.params.names.map((n, i) => [n, ps[i]])))

/** The TDNN written frame by frame in plain JS: h_t = act(Σ_o W_o·h_{t+o} + b), zero outside the chunk. */
function reference(m: Model, x: number[][][]): number[][][] {
  const cfg = m.spec.model as TdnnConfig
  const f = m.params.toFlat()
  const act = { sigmoid: (v: number) => 1 / (1 + Math.exp(-v)), tanh: Math.tanh, relu: (v: number) => Math.max(0, v) }
  const affine = (rows: number[], W: Float32Array, b: Float32Array, out: number) =>
    Array.from({ length: out }, (_, j) => rows.reduce((s, v, i) => s + v * W[i * out + j], b[j]))
  return x.map((seq) => {
    let h = seq
    cfg.hidden.forEach((H, k) => {
      const D = h[0].length
      h = h.map((_, t) => {
        const spliced = cfg.offsets[k].flatMap((o) => h[t + o] ?? new Array<number>(D).fill(0))
        return affine(spliced, f[`l${k}.W`], f[`l${k}.b`], H).map(act[cfg.activation])
      })
    })
    return h.map((row) => affine(row, f['out.W'], f['out.b'], m.spec.numClasses))
  })
}

t.test('forward equals the frame-by-frame definition, including chunk edges', async (t) => {
  for (const model of [
    {},
    { activation: 'tanh' as const, offsets: [[0], [-3, 3]] }, // a plain per-frame layer, then wide taps
    { activation: 'relu' as const, hidden: [6], offsets: [[-9, -1, 0, 2]] }, // a tap beyond the chunk
  ]) {
    const m = tdnn(model)
    const x = rand([2, 7, 3])
    const ours = m.apply(x)
    t.same(ours.shape, [2, 7, 4])
    const want = tf.tensor(reference(m, x.arraySync() as number[][][]))
    const d = maxAbsDiff(ours, want)
    t.ok(d < 1e-5, `${JSON.stringify(model)}: max |Δ| = ${d.toExponential(2)}`)
    m.params.dispose()
  }
})

t.test('gradients: the model and the masked loss against finite differences', async (t) => {
  for (const [model, eps] of [
    [{}, 2e-2],
    [
      {
        activation: 'tanh' as const,
        offsets: [
          [-1, 0, 1],
          [-4, 0, 5],
        ],
      },
      2e-2,
    ], // taps beyond T = 3 give zeros
    [{ activation: 'relu' as const }, 1e-3], // small steps: no pre-activation crosses the kink
  ] as [TdnnInput, number][]) {
    const m = tdnn(model)
    const x = rand([2, 3, 3])
    const params = m.params.names.map((n) => m.params.get(n))
    const res = gradCheck(withParams(m, x), params, { eps })
    t.ok(res.maxRelError <= TOL, `${JSON.stringify(model)}: ${res.maxRelError.toExponential(2)}`)
    const p = tf.softmax(rand([2, 3, 4]))
    const mask = tf.tensor([
      [1, 1, 0],
      [1, 0, 1],
    ])
    const viaLoss = gradCheck((...ps) => softmaxCrossEntropy(withParams(m, x)(...ps), p, mask), params, {
      joint: true,
      directions: 3,
      eps,
    })
    t.ok(viaLoss.maxRelError <= TOL, `through the masked loss: ${viaLoss.maxRelError.toExponential(2)}`)
    m.params.dispose()
  }
})

t.test('parameters: names, shapes, deterministic initialisation', async (t) => {
  const a = tdnn({})
  const b = tdnn({})
  t.same(
    a.params.layout.map((s) => [s.name, s.shape]),
    [
      ['l0.W', [9, 5]],
      ['l0.b', [5]],
      ['l1.W', [10, 4]],
      ['l1.b', [4]],
      ['out.W', [4, 4]],
      ['out.b', [4]],
    ],
  )
  t.same(a.params.toFlat(), b.params.toFlat(), 'same seed, same weights')
  t.not(a.params.toFlat()['l0.W'][0], tdnn({}, 6).params.toFlat()['l0.W'][0], 'another seed, other weights')
  t.same(a.spec.model, {
    type: 'tdnn',
    hidden: [5, 4],
    offsets: [
      [-2, 0, 1],
      [-1, 1],
    ],
    activation: 'sigmoid',
  })
  t.match(
    buildModel({ model: { type: 'tdnn', hidden: [3], offsets: [[0]] }, inputDim: 2, numClasses: 2 }).spec.model,
    { activation: 'relu' },
    'relu by default',
  )
  t.equal(a.input, 'chunks')
  t.throws(() => a.apply(tf.zeros([4, 3])), /tdnn input: expected \[batch, time, 3\], got \[4,3\]/)
  t.throws(() => tdnn({ offsets: [[0]] }), /model.offsets: expected one offset list per hidden layer \(2\), got 1/)
  t.throws(() => tdnn({ offsets: [[0, 0], [1]] }), /model.offsets.0: expected distinct offsets, got \[0,0\]/)
  t.throws(() => tdnn({ hidden: [] }), /model.hidden/)
})

t.test('wasm and cpu agree; no tfjs-layers export', async (t) => {
  const spec = {
    model: {
      type: 'tdnn',
      hidden: [6, 5],
      offsets: [
        [-2, -1, 0, 1, 2],
        [-3, 3],
      ],
    },
    inputDim: 4,
    numClasses: 6,
    seed: 9,
  } as const
  const m = buildModel(spec)
  const x = rand([3, 8, 4])
  const onWasm = m.apply(x).arraySync() as number[]
  const xv = x.arraySync()
  await selectBackend('cpu')
  const mc = buildModel(spec)
  const d = maxAbsDiff(mc.apply(tf.tensor(xv)), tf.tensor(onWasm))
  t.ok(d < 1e-5, `|wasm − cpu| = ${d}`)
  mc.params.dispose()
  await selectBackend('wasm')
  t.throws(() => toLayersModel(m), {
    code: 'not-exportable',
    message: /model type tdnn has no tfjs-layers export .*; types with one: dnn\|lstm\|lstmp\|gru\|rnn/,
  })
  m.params.dispose()
})
