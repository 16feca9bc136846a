import t from 'tap'
import fc from 'fast-check'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { RecordBatchReader } from 'apache-arrow'
import { KTP, ktp, sh, tmp, uttList, writeFeatures } from './helpers.js'
import { spliceContext, spliceFrames, spliceRow } from '../stages/splice/stage.js'
import { getMatrix, uttId } from '../schemas/utterance.js'

t.test('hand-computed: 3 frames × 2 dims, left 2, right 1: edge frames repeated, order t−L … t+R', async (t) => {
  const src = Float32Array.of(1, 10, 2, 20, 3, 30)
  const out = spliceFrames(src, 3, 2, 2, 1)
  t.equal(out.length, 3 * 2 * 4, 'dim D·(L+R+1) = 8')
  t.same(Array.from(out), [
    1,
    10,
    1,
    10,
    1,
    10,
    2,
    20, // t=0: frames -2,-1 → 0; 0; 1
    1,
    10,
    1,
    10,
    2,
    20,
    3,
    30, // t=1: -1 → 0; 0; 1; 2
    1,
    10,
    2,
    20,
    3,
    30,
    3,
    30, // t=2: 0; 1; 2; 3 → 2
  ])
  t.same(Array.from(spliceFrames(Float32Array.of(5), 1, 1, 1, 1)), [5, 5, 5], 'one frame: itself everywhere')
  t.equal(spliceFrames(new Float32Array(0), 0, 4, 5, 5).length, 0, 'no frames, no output')
  t.same(Array.from(spliceFrames([1, 2, 3], 3, 1, 0, 0)), [1, 2, 3], 'no context: identity (plain arrays too)')
})

t.test('context options: --context K sets both; contradictions are usage errors', async (t) => {
  t.same(spliceContext({ context: 5 }), { left: 5, right: 5 })
  t.same(spliceContext({ left: 3, right: 1 }), { left: 3, right: 1 })
  t.same(spliceContext({}), { left: 4, right: 4 }, 'splice-feats defaults')
  t.throws(() => spliceContext({ context: 2, left: 3 }), /--context 2 contradicts --left 3/)
})

t.test(
  'property: the lazy row view equals the materialised matrix, and each block is a clamped source frame',
  async (t) => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 0, max: 6 }),
        fc.integer({ min: 0, max: 6 }),
        (frames, dim, left, right) => {
          const src = Float32Array.from({ length: frames * dim }, (_, i) => i * 0.5 - 3)
          const width = dim * (left + right + 1)
          const full = spliceFrames(src, frames, dim, left, right)
          const row = new Float32Array(width + 3)
          for (let tt = 0; tt < frames; tt++) {
            spliceRow(src, frames, dim, left, right, tt, row, 3)
            for (let j = 0; j < width; j++) if (row[3 + j] !== full[tt * width + j]) return false
            for (let k = -left; k <= right; k++) {
              const s = Math.min(Math.max(tt + k, 0), frames - 1)
              for (let j = 0; j < dim; j++)
                if (full[tt * width + (k + left) * dim + j] !== src[s * dim + j]) return false
            }
          }
          return full.length === frames * width
        },
      ),
      { seed: 42, numRuns: 300 },
    )
    t.pass('300 random shapes')
  },
)

t.test('CLI: ktp splice --context 5 on a pipe gives dim 11·D and the same frames', async (t) => {
  const dir = tmp()
  const feats = join(dir, 'f.arrow')
  const data = writeFeatures(
    feats,
    uttList(4, (i) => 3 + i),
    23,
    5,
  )
  const r = sh(`${KTP} cat ${feats} | ${KTP} splice --context 5 --quiet | ${KTP} info - --json`)
  t.equal(r.code, 0, r.stderr)
  const j = JSON.parse(r.stdout.toString())
  t.equal(j.columns.find((c: { name: string }) => c.name === 'feats').width, 253)
  t.equal(j.frames, 3 + 4 + 5 + 6)
  const out = join(dir, 's.arrow')
  t.equal(ktp(['splice', feats, '--left', '1', '--right', '0', '-o', out, '--quiet']).code, 0)
  const batches = RecordBatchReader.from(readFileSync(out)).readAll()
  const m = getMatrix(batches[0], 'feats')
  const u = uttId(batches[0])
  t.same(
    Array.from(m.data),
    Array.from(spliceFrames(data.get(u)!, 3, 23, 1, 0)),
    'file output matches the pure function',
  )
  const bad = ktp(['splice', feats, '--context', '2', '--right', '1'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /--context 2 contradicts --right 1/)
})
