import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BatchEncoder } from '../pipeline/io/arrow-encoder.js'
import { openArrow } from '../pipeline/io/arrow-source.js'
import { puller } from '../pipeline/io/pull.js'
import { makeSchema } from '../schemas/kinds.js'
import { getMatrix, makeUttBatch, uttId } from '../schemas/utterance.js'
import { ktp, rng, tmp } from './helpers.js'

/**
 * Issue 15 (fix c): a recurrent student trained with a target delay d names frame t at output
 * t + d. `ktp infer` once read output t as frame t, so every delayed model was scored d frames
 * early. Round trip on a task only the current frame answers: each frame's class is written in the
 * frame itself and classes change every 1–2 frames, so a read d frames off is near chance.
 */
const D = tmp('ktp-infer-delay-')
const p = (...xs: string[]) => join(D, ...xs)
const C = 6
const r = rng(5)
const featSchema = makeSchema('features', { widths: { feats: C }, metadata: { 'ktp.fingerprint': 'delay-toy' } })
const labSchema = makeSchema('labels', { metadata: { 'ktp.num_classes': String(C) } })
const feats = new BatchEncoder(featSchema, 'file')
const labs = new BatchEncoder(labSchema, 'file')
const fParts: Uint8Array[] = [...feats.begin()]
const lParts: Uint8Array[] = [...labs.begin()]
const truth = new Map<string, Int32Array>()
for (let u = 0; u < 40; u++) {
  const frames = 30 + Math.floor(r() * 30)
  const y = new Int32Array(frames)
  for (let f = 0; f < frames; f++) y[f] = f > 0 && r() < 0.4 ? y[f - 1] : Math.floor(r() * C)
  const x = new Float32Array(frames * C)
  for (let f = 0; f < frames; f++) for (let c = 0; c < C; c++) x[f * C + c] = (c === y[f] ? 2 : 0) + 0.3 * (r() - 0.5)
  const utt = `u${String(u).padStart(3, '0')}`
  truth.set(utt, y)
  fParts.push(...feats.encode(makeUttBatch(featSchema, { utt, feats: x })))
  lParts.push(...labs.encode(makeUttBatch(labSchema, { utt, labels: y })))
}
fParts.push(...feats.finish())
lParts.push(...labs.finish())
writeFileSync(p('feats.arrow'), Buffer.concat(fParts))
writeFileSync(p('labels.arrow'), Buffer.concat(lParts))

const run = (args: string[]) => {
  const res = ktp(args)
  if (res.code !== 0) throw new Error(`ktp ${args.join(' ')} exited ${res.code}:\n${res.stderr}`)
}

t.test('a model trained with --delay 3 records it, and ktp infer aligns its outputs to frames', async (t) => {
  const data = ['--feats', p('feats.arrow'), '--labels', p('labels.arrow'), '--heldout-fraction', '0.1']
  run([
    ...['train-student', ...data, '--mode', 'baseline', '--model', '{"type":"lstm","cells":16}', '--delay', '3'],
    ...['--lr', '2', '--fixed-lr', '--max-epochs', '6', '--chunks-per-batch', '4', '--chunk-length', '10'],
    ...['--backend', 'wasm', '-o', p('m')],
  ])
  const meta = JSON.parse(readFileSync(p('m', 'ktp.json'), 'utf8')) as { delay?: number }
  t.equal(meta.delay, 3, 'ktp.json records the target delay')
  run([
    'infer',
    '--model',
    p('m'),
    p('feats.arrow'),
    '--top-k',
    '0',
    '--dtype',
    'f32',
    '-o',
    p('post.arrow'),
    '--quiet',
  ])
  const src = await openArrow(p('post.arrow'), ['soft-dense'])
  const next = puller(src.stream())
  // hits of output row f against the label of frame f + shift
  const hits = new Map([-3, 0, 3].map((s) => [s, { hit: 0, n: 0 }]))
  for (let b = await next(); b; b = await next()) {
    const lp = getMatrix(b, 'logp')
    const y = truth.get(uttId(b))!
    t.equal(lp.frames, y.length, `${uttId(b)}: one output row per frame`)
    for (let f = 0; f < lp.frames; f++) {
      const row = Array.from(lp.data.subarray(f * C, (f + 1) * C))
      const arg = row.indexOf(Math.max(...row))
      for (const [s, h] of hits) {
        if (f + s < 0 || f + s >= y.length) continue
        h.n++
        if (arg === y[f + s]) h.hit++
      }
    }
  }
  await src.close()
  const acc = (s: number) => (100 * hits.get(s)!.hit) / hits.get(s)!.n
  t.comment(`infer accuracy: row t vs frame t ${acc(0).toFixed(1)}%, vs t − 3 ${acc(-3).toFixed(1)}%`)
  t.ok(acc(0) > 60, 'row t names frame t (chance: 17%)')
  t.ok(acc(0) > acc(-3) + 25, 'not frame t − 3: the delay is undone (before the fix, this read was the better one)')
})
