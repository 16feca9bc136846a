/**
 * `ktp infer` runs a frame model in forward passes of at most --batch-frames frames (a pass's
 * wasm memory is in proportion to its frames, and a WebAssembly.Memory never shrinks: one pass
 * per group of 32 utterances let the heap grow with the longest group of the input). Checked: the
 * planner's passes (golden and random), that the stage never hands the model more frames than the
 * budget, that a budget which cuts utterances gives the same bytes as one that does not, dense
 * and top-k, and that no tensor outlives its utterance.
 */
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import type { RecordBatch } from 'apache-arrow'
import _ from 'highland'
import t from 'tap'
import { BatchEncoder } from '../pipeline/io/arrow-encoder.js'
import { makeSchema } from '../schemas/kinds.js'
import { makeUttBatch } from '../schemas/utterance.js'
import { framePasses } from '../stages/nn/index.js'
import { type InferOptions, inferSchema, inferStage } from '../stages/infer/stage.js'
import { buildModel } from '../stages/nn/index.js'
import { loadModel, saveModel } from '../stages/train/model-store.js'
import { useBackend } from '../stages/train/session.js'
import { rng, tmp } from './helpers.js'

t.test('framePasses: whole utterances up to the budget, longer ones cut into budget-sized pieces', async (t) => {
  t.same(framePasses([3, 5, 2, 9, 1], 6), [
    [{ utt: 0, from: 0, to: 3 }],
    [{ utt: 1, from: 0, to: 5 }],
    [{ utt: 2, from: 0, to: 2 }],
    [{ utt: 3, from: 0, to: 6 }],
    [
      { utt: 3, from: 6, to: 9 },
      { utt: 4, from: 0, to: 1 },
    ],
  ])
  t.same(framePasses([2, 2, 2], 6), [
    [
      { utt: 0, from: 0, to: 2 },
      { utt: 1, from: 0, to: 2 },
      { utt: 2, from: 0, to: 2 },
    ],
  ])
  t.same(framePasses([], 6), [])
  t.throws(() => framePasses([1], 0), /positive integer/)
  const r = rng(11)
  for (let trial = 0; trial < 200; trial++) {
    const budget = 1 + Math.floor(r() * 40)
    const frames = Array.from({ length: Math.floor(r() * 20) }, () => 1 + Math.floor(r() * 60))
    const passes = framePasses(frames, budget)
    const pieces = passes.flat()
    const over = passes.find((p) => p.reduce((a, x) => a + x.to - x.from, 0) > budget)
    if (over) return t.fail(`a pass over the budget ${budget}: ${JSON.stringify(over)}`)
    // every frame once, in order: pieces run utterance by utterance, each continuing the last
    let utt = 0
    let next = 0
    for (const p of pieces) {
      if (p.from === 0 && next === frames[utt]) {
        utt++
        next = 0
      }
      if (p.utt !== utt || p.from !== next || p.to <= p.from) return t.fail(`gap or overlap at ${JSON.stringify(p)}`)
      next = p.to
    }
    t.equal(utt + (frames.length > 0 ? 1 : 0), frames.length, 'every utterance')
    if (frames.length > 0) t.equal(next, frames[frames.length - 1], 'to the last frame')
    for (const [u, n] of frames.entries())
      if (n <= budget)
        t.equal(pieces.filter((p) => p.utt === u).length, 1, `utterance of ${n} ≤ ${budget} frames not cut`)
  }
})

await useBackend('wasm', () => {})
const DIM = 5
const CLASSES = 23
const dir = join(tmp('ktp-infer-passes-'), 'teacher')
{
  const m = buildModel({
    model: { type: 'dnn', hidden: [16], activation: 'sigmoid' },
    inputDim: DIM * 5,
    numClasses: CLASSES,
    seed: 4,
  })
  saveModel(dir, m, {
    splice: { left: 2, right: 2 },
    featureDim: DIM,
    featureFingerprint: null,
    numClasses: CLASSES,
    inventory: null,
    priors: null,
    fingerprint: 'passes-test',
    build: 'passes-test',
    training: { stage: 'test' },
  })
  m.params.dispose()
}
const { model, meta } = loadModel(dir)
const featSchema = makeSchema('features', { widths: { feats: DIM } })
const r = rng(3)
// 1 to 90 frames: a budget of 16 cuts most of them, at every offset into their splice context
const inputs = Array.from({ length: 70 }, (_, i) => {
  const frames = 1 + Math.floor(r() * 90)
  const feats = Float32Array.from({ length: frames * DIM }, () => r() * 4 - 2)
  return makeUttBatch(featSchema, { utt: `u${String(i).padStart(3, '0')}`, feats })
})

/** The stage's output over `inputs` as Arrow stream bytes, and the most frames any forward pass got. */
async function run(o: InferOptions): Promise<{ bytes: Buffer; widest: number }> {
  const schema = inferSchema(meta, o, 'passes-test')
  let widest = 0
  const apply = model.apply.bind(model)
  const spy = Object.create(model, {
    apply: {
      value: (x: tf.Tensor) => {
        widest = Math.max(widest, x.shape[0])
        return apply(x)
      },
    },
  })
  const out = await inferStage(spy, meta, schema, o)(_(inputs)).collect().toPromise(Promise)
  const enc = new BatchEncoder(schema, 'stream')
  return { bytes: Buffer.concat([...enc.begin(), ...out.flatMap((b: RecordBatch) => enc.encode(b))]), widest }
}

for (const topK of [0, 5]) {
  t.test(`${topK ? `top-${topK}` : 'dense'}: passes within the budget, the same bytes as uncut passes`, async (t) => {
    const base = { topK, dtype: 'f32' as const, batchUtts: 32 }
    const whole = await run({ ...base, batchFrames: 1 << 20 })
    t.ok(whole.widest > 400, `unbounded, a group of 32 utterances is one pass (${whole.widest} frames)`)
    for (const batchFrames of [16, 57, 300]) {
      const before = tf.memory().numTensors
      const cut = await run({ ...base, batchFrames })
      t.ok(cut.widest <= batchFrames, `budget ${batchFrames}: widest pass ${cut.widest}`)
      t.ok(cut.bytes.equals(whole.bytes), `budget ${batchFrames}: byte-identical output (${cut.bytes.length} B)`)
      t.equal(
        tf.memory().numTensors,
        before,
        `budget ${batchFrames}: no tensor left behind over ${inputs.length} utterances`,
      )
    }
  })
}
