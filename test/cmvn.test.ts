import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { RecordBatchReader } from 'apache-arrow'
import { KTP, ktp, sh, tmp, uttList, writeFeatures } from './helpers.js'
import {
  accumulate,
  applyCmvn,
  cmvnApplyOptions,
  cmvnApplyStage,
  cmvnComputeOptions,
  computeCmvn,
  newAccum,
  normalizer,
  parseStats,
  planApply,
  statsToJson,
} from '../stages/cmvn/stage.js'
import { arrowInput, runStage } from '../pipeline/io/run-stage.js'
import { makeSchema } from '../schemas/kinds.js'
import type { UttError } from '../schemas/errors.js'
import { getMatrix, uttId } from '../schemas/utterance.js'

const dir = tmp('ktp-cmvn-')
const feats = join(dir, 'f.arrow')
const utts = uttList(12, (i) => 20 + 7 * i)
const data = writeFeatures(feats, utts, 5, 3, 'feat-fp')

function readAll(buf: Buffer) {
  const out = new Map<string, Float32Array>()
  for (const b of RecordBatchReader.from(buf).readAll()) {
    for (let r = 0; r < b.numRows; r++)
      out.set(uttId(b.slice(r, r + 1)), getMatrix(b.slice(r, r + 1), 'feats').data.slice())
  }
  return out
}

/** Per-dimension mean and (population) variance over all frames of `mats`. */
function moments(mats: Float32Array[], dim: number) {
  const n = mats.reduce((a, m) => a + m.length / dim, 0)
  const mean = new Array(dim).fill(0)
  const v = new Array(dim).fill(0)
  for (const m of mats) for (let i = 0; i < m.length; i++) mean[i % dim] += m[i] / n
  for (const m of mats) for (let i = 0; i < m.length; i++) v[i % dim] += (m[i] - mean[i % dim]) ** 2 / n
  return { mean, v }
}

/** In-process compute (the CLI path is covered by the global test; subprocesses are slow here). */
async function compute(opts: Record<string, unknown>) {
  const errors: UttError[] = []
  const r = await computeCmvn(await arrowInput(feats, ['features']), 5, cmvnComputeOptions.parse(opts), (e) =>
    errors.push(e),
  )
  return { ...r, errors }
}

/** In-process apply to a file; returns the normalised matrices and the output fingerprint. */
async function apply(opts: Record<string, unknown>, statsText: string | null, output: string) {
  const plan = planApply(cmvnApplyOptions.parse(opts), statsText)
  const r = await runStage({
    stage: 'cmvn-apply',
    options: plan.fingerprintOptions,
    input: await arrowInput(feats, ['features']),
    schema: makeSchema('features', { widths: { feats: 5 } }),
    transform: cmvnApplyStage(plan, 5),
    output,
    quiet: true,
    log: () => {},
  })
  return { out: readAll(readFileSync(output)), fingerprint: r.fingerprint }
}

t.test('by hand: stats and normalisation of a 3-frame, 2-dim matrix', async (t) => {
  const acc = newAccum(2)
  accumulate(acc, [1, 10, 2, 20, 6, 30], 3, 2)
  t.same(
    { count: acc.count, sum: Array.from(acc.sum), sumsq: Array.from(acc.sumsq) },
    { count: 3, sum: [9, 60], sumsq: [41, 1400] },
  )
  const n = normalizer(acc, true, 1e-20)
  t.same(Array.from(n.mean), [3, 20])
  // var = 41/3 − 9 = 14/3 and 1400/3 − 400 = 200/3
  t.ok(Math.abs(n.scale[0] - 1 / Math.sqrt(14 / 3)) < 1e-12 && Math.abs(n.scale[1] - 1 / Math.sqrt(200 / 3)) < 1e-12)
  const out = applyCmvn([1, 10, 2, 20, 6, 30], 3, 2, normalizer(acc, false, 1e-20))
  t.same(Array.from(out), [-2, -10, -1, 0, 3, 10], 'mean only')
  const flat = newAccum(1)
  accumulate(flat, [4, 4, 4], 3, 1)
  t.same(
    Array.from(applyCmvn([4, 4, 4], 3, 1, normalizer(flat, true, 1e-20))),
    [0, 0, 0],
    'a constant dimension hits the floor and stays finite',
  )
})

t.test('global: compute → apply gives mean 0 and variance 1 over all frames', async (t) => {
  const stats = join(dir, 'global.json')
  const c = ktp(['cmvn', 'compute', feats, '-o', stats, '--norm-vars'])
  t.equal(c.code, 0, c.stderr)
  t.match(c.stderr, /done 12, failed 0/)
  const s = parseStats(readFileSync(stats, 'utf8'), stats)
  t.equal(s.mode, 'global')
  t.equal(s.features_fingerprint, 'feat-fp')
  t.equal(
    s.stats.global.count,
    utts.reduce((a, u) => a + u.frames, 0),
  )
  const r = sh(`${KTP} cmvn apply --stats ${stats} ${feats} --quiet`)
  t.equal(r.code, 0, r.stderr)
  const out = readAll(r.stdout)
  t.equal(out.size, 12)
  const { mean, v } = moments([...out.values()], 5)
  for (let j = 0; j < 5; j++) {
    t.ok(Math.abs(mean[j]) < 1e-5, `dim ${j} mean ${mean[j]}`)
    t.ok(Math.abs(v[j] - 1) < 1e-4, `dim ${j} variance ${v[j]}`)
  }
})

t.test("per speaker: stats equal hand sums over that speaker's utterances; apply centres each speaker", async (t) => {
  const u2s = join(dir, 'utt2spk')
  writeFileSync(u2s, utts.map((u, i) => `${u.utt} ${i % 3 === 0 ? 'alice' : 'bob'}\n`).join(''))
  const { stats: s } = await compute({ mode: 'speaker', utt2spk: u2s })
  t.same(Object.keys(s.stats).sort(), ['alice', 'bob'])
  const alice = utts.filter((_, i) => i % 3 === 0).map((u) => data.get(u.utt)!)
  const sum0 = alice.reduce((a, m) => a + m.filter((_, i) => i % 5 === 0).reduce((x, y) => x + y, 0), 0)
  const sq2 = alice.reduce((a, m) => a + m.filter((_, i) => i % 5 === 2).reduce((x, y) => x + y * y, 0), 0)
  t.equal(
    s.stats.alice.count,
    alice.reduce((a, m) => a + m.length / 5, 0),
  )
  t.ok(Math.abs(s.stats.alice.sum[0] - sum0) < 1e-9, `sum ${s.stats.alice.sum[0]} vs ${sum0}`)
  t.ok(Math.abs(s.stats.alice.sumsq[2] - sq2) < 1e-9)
  t.equal(s.utt2spk![utts[3].utt], 'alice', 'the mapping travels in the stats file')
  const { out } = await apply({}, statsToJson(s), join(dir, 'spk.arrow'))
  const m = moments(
    utts.filter((_, i) => i % 3 === 0).map((u) => out.get(u.utt)!),
    5,
  ).mean
  t.ok(
    m.every((x) => Math.abs(x) < 1e-5),
    'alice is centred on her own mean',
  )

  const missing = join(dir, 'u2s-part')
  writeFileSync(missing, `${utts[0].utt} alice\n`)
  const part = await compute({ mode: 'speaker', utt2spk: missing })
  t.same([part.done, part.failed], [1, 11], 'utterances without a speaker fail, the rest goes on')
  t.match(part.errors[0].message, /utt00001: no speaker in .*u2s-part/)
  await t.rejects(compute({ mode: 'speaker' }), /--mode speaker needs --utt2spk FILE or --data DIR/)
})

t.test('per utterance on the fly; stats JSON round trip; fingerprint carries the stats hash', async (t) => {
  const { out } = await apply({ mode: 'utterance', normVars: true }, null, join(dir, 'utt.arrow'))
  for (const u of [utts[0].utt, utts[11].utt]) {
    const { mean, v } = moments([out.get(u)!], 5)
    t.ok(mean.every((x) => Math.abs(x) < 1e-5) && v.every((x) => Math.abs(x - 1) < 1e-4), `${u} normalised by itself`)
  }
  const { stats: s } = await compute({ mode: 'utterance' })
  t.equal(Object.keys(s.stats).length, 12)
  t.same(parseStats(statsToJson(s), 'again'), s, 'JSON round trip is exact (Float64 sums survive)')
  t.throws(() => parseStats('{"format":"other"}', 'x.json'), /x\.json: not a ktp-cmvn version 1 stats file/)

  const g1 = statsToJson((await compute({})).stats)
  const g2 = g1.replace(/"count": (\d+)/, (_, n) => `"count": ${Number(n) + 1}`)
  const f1 = (await apply({}, g1, join(dir, 'a.arrow'))).fingerprint
  const f2 = (await apply({}, g2, join(dir, 'b.arrow'))).fingerprint
  t.not(f1, f2, 'different stats content → different output fingerprint')
  t.throws(() => planApply(cmvnApplyOptions.parse({}), null), /give --stats STATS\.json/)
  t.throws(
    () => planApply(cmvnApplyOptions.parse({ mode: 'speaker' }), g1),
    /--mode speaker but .* holds global statistics/,
  )
  writeFileSync(
    join(dir, 'd3.json'),
    statsToJson({ ...s, mode: 'global', dim: 3, stats: { global: { count: 1, sum: [0, 0, 0], sumsq: [1, 1, 1] } } }),
  )
  const bad = ktp(['cmvn', 'apply', '--stats', join(dir, 'd3.json'), feats])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /holds 3-dimensional statistics but .* has 5-dimensional features/)
})
