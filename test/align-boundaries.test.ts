import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ktp, tmp } from './helpers.js'
import { compareBoundaries } from '../pipeline/recipes/boundaries.js'

// Issue 6 acceptance: connected digits built from FSDD by concatenation have known digit
// boundaries; flat start inside the known spans, a DNN trained on it, then Viterbi realignment
// (without the spans) must put ≥ 90% of the boundaries within 30 ms of the true points. The data
// and alignment part of the fsdd recipe, on 40 recordings per speaker (bundled FSDD).
t.test('flat start + realignment finds ≥ 90% of digit boundaries within 30 ms', async (t) => {
  const out = tmp('ktp-bounds-')
  const r = ktp(['run', 'fsdd', '--quick', '--set', 'connect.maxPerSpeaker=40', '--until', 'boundaries', '--out', out])
  t.equal(r.code, 0, r.stderr)
  const b = JSON.parse(readFileSync(join(out, 'boundaries.json'), 'utf8'))
  t.comment(
    `boundaries within 30 ms: ${(100 * b.fraction).toFixed(1)}% of ${b.boundaries} (mean |error| ${(1000 * b.mean_abs_error_s).toFixed(1)} ms)`,
  )
  t.ok(b.boundaries >= 200, 'enough boundaries to judge')
  t.ok(b.fraction >= 0.9, `${(100 * b.fraction).toFixed(1)}% ≥ 90%`)
})

t.test('boundary comparison by hand', async (t) => {
  const truth = new Map([
    [
      'u',
      [
        { start: 0.1, dur: 0.4, label: 'one' },
        { start: 0.6, dur: 0.3, label: 'two' },
      ],
    ],
  ])
  const aligned = new Map([
    [
      'u',
      [
        { start: 0, dur: 0.12, label: 'sil' },
        { start: 0.12, dur: 0.35, label: 'one' },
        { start: 0.55, dur: 0.4, label: 'two' },
      ],
    ],
  ])
  // boundaries: 0.1 vs 0.12 (ok), 0.5 vs 0.47 (ok), 0.6 vs 0.55 (50 ms: no), 0.9 vs 0.95 (no)
  const r = compareBoundaries(truth, aligned, 0.03)
  t.equal(r.boundaries, 4)
  t.equal(r.within, 2)
  t.ok(Math.abs(r.mean_abs_error_s - (0.02 + 0.03 + 0.05 + 0.05) / 4) < 1e-9)
})
