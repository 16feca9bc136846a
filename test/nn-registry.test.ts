// The model registry (stages/nn/registry.ts) and nn's public face (stages/nn/index.ts): every model
// file is registered, every registered type builds, trains without a transposed matMul reaching the
// wasm backend, and code outside stages/nn imports nn through index.ts (or the tfjs-free init.ts).
import t from 'tap'
import * as tf from '@tensorflow/tfjs'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, normalize } from 'node:path'
import {
  MODEL_TYPES,
  MODEL_TYPE_NAMES,
  type ModelConfigInput,
  buildModel,
  modelType,
  mulberry32,
  selectBackend,
} from '../stages/nn/index.js'
import { partGradients } from '../stages/train/loss.js'
import { ROOT } from './helpers.js'

t.equal(await selectBackend('wasm'), 'wasm')

/** One small config per registered type name; a new model type adds its line here. */
const EXAMPLES: Record<string, ModelConfigInput> = {
  dnn: { type: 'dnn', hidden: [6, 5] },
  lstm: { type: 'lstm', layers: 2, cells: 4, peepholes: true, bidirectional: true },
  lstmp: { type: 'lstmp', cells: 4, projection: 3, bottleneck: 3 },
  gru: { type: 'gru', layers: 2, cells: 4, bidirectional: true },
  rnn: { type: 'rnn', cells: 4 },
  tdnn: {
    type: 'tdnn',
    hidden: [5, 4],
    offsets: [
      [-2, 0, 2],
      [-1, 1],
    ],
  },
}

t.test('the registry lists every model file, each type once', async (t) => {
  t.same(MODEL_TYPE_NAMES, ['dnn', 'lstm', 'lstmp', 'gru', 'rnn', 'tdnn'])
  t.same(Object.keys(EXAMPLES).sort(), [...MODEL_TYPE_NAMES].sort(), 'an example config per registered type')
  const dir = join(ROOT, 'stages', 'nn', 'models')
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const mod = (await import(join(dir, f.replace(/\.ts$/, '.js')))) as Record<string, unknown>
    const entries = Object.values(mod).filter((v) => (MODEL_TYPES as readonly unknown[]).includes(v))
    t.equal(entries.length, 1, `models/${f} exports one registered entry`)
  }
  t.equal(MODEL_TYPES.length, readdirSync(dir).filter((f) => f.endsWith('.ts')).length, 'and nothing else is listed')
  t.throws(() => modelType('cnn'), /unknown model type 'cnn'; expected one of dnn\|lstm\|lstmp\|gru\|rnn\|tdnn/)
})

t.test('every type builds with its input layout and width', async (t) => {
  const r = mulberry32(4)
  for (const [name, model] of Object.entries(EXAMPLES)) {
    const entry = modelType(name)
    const inputDim = entry.inputDim(3, 2)
    t.equal(inputDim, entry.input === 'frames' ? 3 * 5 : 3, `${name}: input width from 3 features, ±2 context`)
    const m = buildModel({ model, inputDim, numClasses: 4, seed: 2 })
    t.equal(m.input, entry.input)
    const shape = m.input === 'frames' ? [6, inputDim] : [2, 5, inputDim]
    const x = tf.tensor(
      Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => 2 * r() - 1),
      shape,
    )
    t.same(
      m.apply(x).shape,
      [...shape.slice(0, -1), 4],
      `${name}: logits per ${m.input === 'frames' ? 'frame' : 'chunk frame'}`,
    )
    m.params.dispose()
  }
})

t.test('no transposed matMul reaches the wasm backend, forward or backward', async (t) => {
  // tfjs-wasm sends matMuls with a transpose flag to a naive loop (10–27× slower): the engine
  // materialises transposes instead. Watch every matMul kernel while each type computes a gradient.
  const flagged: string[] = []
  let calls = 0
  const restore: (() => void)[] = []
  for (const name of ['BatchMatMul', '_FusedMatMul']) {
    const k = tf.getKernel(name, 'wasm')!
    tf.unregisterKernel(name, 'wasm')
    tf.registerKernel({
      ...k,
      kernelFunc: (args) => {
        const a = args.attrs as { transposeA?: boolean; transposeB?: boolean }
        calls++
        if (a.transposeA || a.transposeB) flagged.push(name)
        return k.kernelFunc(args)
      },
    })
    restore.push(() => {
      tf.unregisterKernel(name, 'wasm')
      tf.registerKernel(k)
    })
  }
  const r = mulberry32(5)
  try {
    // the watch sees what it should: a flagged product is caught
    tf.tidy(() => tf.matMul(tf.ones([2, 3]), tf.ones([2, 3]), true))
    t.same(flagged, ['BatchMatMul'], 'a transposeA matMul is seen')
    for (const [name, model] of Object.entries(EXAMPLES)) {
      const m = buildModel({ model, inputDim: 3, numClasses: 4, seed: 2 })
      const shape = m.input === 'frames' ? [6, 3] : [2, 5, 3]
      const x = tf.tensor(
        Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => 2 * r() - 1),
        shape,
      )
      const targets = tf.softmax(
        tf.tensor(Float32Array.from({ length: (x.size / 3) * 4 }, r), [...shape.slice(0, -1), 4]),
      )
      flagged.length = 0
      calls = 0
      const g = partGradients(m, { x, terms: [{ temperature: 2, weight: 1, targets }], rows: x.size / 3 }, 1)
      const norm = tf.tidy(() => tf.addN(Object.values(g.grads).map((v) => tf.sum(tf.square(v)))).dataSync()[0])
      tf.dispose([g.value, g.correct, g.counted, ...Object.values(g.grads)])
      t.ok(norm > 0, `${name}: a gradient`)
      t.same(flagged, [], `${name}: none of its ${calls} matMuls is flagged`)
      m.params.dispose()
    }
  } finally {
    for (const f of restore) f()
  }
})

t.test(
  'outside stages/nn, nn is imported through index.ts (or the tfjs-free init.ts, or browser.ts for the page)',
  async (t) => {
    const sources = (dir: string): string[] =>
      readdirSync(join(ROOT, dir)).flatMap((e) => {
        const rel = `${dir}/${e}`
        if (statSync(join(ROOT, rel)).isDirectory()) return e === 'node_modules' ? [] : sources(rel)
        return e.endsWith('.ts') && !e.endsWith('.d.ts') ? [rel] : []
      })
    // static, type-only and dynamic imports alike (as test/layers.test.ts reads them)
    const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g
    const doors = new Set(['stages/nn/index.ts', 'stages/nn/init.ts', 'stages/nn/browser.ts'])
    const reachIns: string[] = []
    for (const f of ['pipeline', 'stages', 'schemas', 'bench', 'test'].flatMap(sources)) {
      if (f.startsWith('stages/nn/')) continue
      for (const m of readFileSync(join(ROOT, f), 'utf8').matchAll(IMPORT)) {
        const to = normalize(join(dirname(f), (m[1] ?? m[2]).replace(/\.js$/, '.ts')))
          .split('\\')
          .join('/')
        if (to.startsWith('stages/nn/') && !doors.has(to)) reachIns.push(`${f} -> ${to}`)
      }
    }
    t.same(reachIns, [], 'imports of nn internals')
  },
)
