/**
 * `ktp infer --backend onnxruntime` (stages/nn/onnx.ts): the ONNX graph ktp writes from a DNN's
 * weights, run by ONNX Runtime, gives the wasm path's log-probabilities within 1e-4 (dense f32, so
 * every class of every frame is compared) and the same top-k ids. onnxruntime-node is an optional
 * dependency: without it these checks skip, saying so.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { tableFromIPC } from 'apache-arrow'
import t from 'tap'
import { buildModel, onnxRuntimeAvailable } from '../stages/nn/index.js'
import { saveModel } from '../stages/train/model-store.js'
import { ktp, tmp, uttList, writeFeatures } from './helpers.js'

const ort = await onnxRuntimeAvailable()

function teacher(dir: string, model: Parameters<typeof buildModel>[0]['model'], inputDim: number): string {
  const m = buildModel({ model, inputDim, numClasses: 37, seed: 3 })
  try {
    saveModel(dir, m, {
      splice: { left: 2, right: 2 },
      featureDim: inputDim / 5,
      featureFingerprint: null,
      numClasses: 37,
      inventory: null,
      priors: null,
      fingerprint: 'ort-test',
      build: 'ort-test',
      training: { stage: 'test' },
    })
  } finally {
    m.params.dispose()
  }
  return dir
}

/** Every logp value of a dense soft-target file, utterances in order. */
function denseValues(path: string): { utts: string[]; values: Float32Array } {
  const tb = tableFromIPC(readFileSync(path))
  const utts: string[] = []
  const parts: Float32Array[] = []
  for (const b of tb.batches) {
    for (let i = 0; i < b.numRows; i++) utts.push(String(b.getChild('utt')!.get(i)))
    const list = b.getChild('logp')!.data[0]
    const off = list.valueOffsets
    const C = (list.children[0].type as unknown as { listSize: number }).listSize
    const v = list.children[0].children[0].values as Float32Array
    parts.push(v.subarray(off[0] * C, off[list.length] * C))
  }
  const values = new Float32Array(parts.reduce((a, p) => a + p.length, 0))
  let o = 0
  for (const p of parts) {
    values.set(p, o)
    o += p.length
  }
  return { utts, values }
}

t.test('--backend onnxruntime equals the wasm path within 1e-4', { skip: ort.ok ? false : ort.detail }, async (t) => {
  const dir = tmp('ktp-ort-')
  const feats = join(dir, 'feats.arrow')
  writeFeatures(
    feats,
    uttList(5, (i) => 7 + 13 * i),
    6,
  )
  for (const activation of ['sigmoid', 'tanh', 'relu'] as const) {
    const model = teacher(join(dir, `m-${activation}`), { type: 'dnn', hidden: [24, 16], activation }, 30)
    const run = (backend: string, out: string) =>
      ktp([
        'infer',
        '--model',
        model,
        feats,
        '--backend',
        backend,
        '--top-k',
        '0',
        '--dtype',
        'f32',
        '-o',
        out,
        '--quiet',
      ])
    const w = run('wasm', join(dir, `w-${activation}.arrow`))
    const o = run('onnxruntime', join(dir, `o-${activation}.arrow`))
    t.equal(w.code, 0, `${activation}: wasm run succeeds`)
    t.equal(o.code, 0, `${activation}: onnxruntime run succeeds${o.code ? `: ${o.stderr.slice(-300)}` : ''}`)
    const a = denseValues(join(dir, `w-${activation}.arrow`))
    const b = denseValues(join(dir, `o-${activation}.arrow`))
    t.same(b.utts, a.utts, `${activation}: same utterances in the same order`)
    t.equal(b.values.length, a.values.length, `${activation}: same number of values`)
    t.equal(a.values.length, 37 * (7 + 20 + 33 + 46 + 59), 'every class of every frame')
    let worst = 0
    for (let i = 0; i < a.values.length; i++) worst = Math.max(worst, Math.abs(a.values[i] - b.values[i]))
    t.ok(worst <= 1e-4, `${activation}: max |Δ log p| = ${worst.toExponential(2)} ≤ 1e-4`)
  }
})

t.test(
  '--backend onnxruntime refuses a recurrent teacher in one line',
  { skip: ort.ok ? false : ort.detail },
  async (t) => {
    const dir = tmp('ktp-ort-')
    const feats = join(dir, 'feats.arrow')
    writeFeatures(
      feats,
      uttList(2, () => 9),
      6,
    )
    const model = teacher(join(dir, 'lstm'), { type: 'lstm', layers: 1, cells: 8 }, 30)
    const r = ktp(['infer', '--model', model, feats, '--backend', 'onnxruntime', '-o', join(dir, 'o.arrow'), '--quiet'])
    t.not(r.code, 0, 'fails')
    t.match(r.stderr, /--backend onnxruntime runs DNN \(frame\) models only.*--backend wasm/)
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace')
  },
)
