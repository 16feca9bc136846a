import t from 'tap'
import fc from 'fast-check'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { planOrder } from '../pipeline/recipes/runner.js'
import { fsddPrep } from '../pipeline/recipes/fsdd.js'
import { FSDD_QUICK } from '../pipeline/recipes/fsdd-config.js'
import { type SweepAxes, planSweep, pointConfig } from '../pipeline/recipes/sweep.js'
import { gainVerdict, stat, writeSweepReport } from '../pipeline/recipes/sweep-report.js'
import { SYSTEMS } from '../pipeline/recipes/systems.js'
import { balancedSubset } from '../stages/train/session.js'
import { ktp, tmp } from './helpers.js'

const base = { ...structuredClone(FSDD_QUICK), seeds: [1, 2] }
const axes: SweepAxes = {
  dataFraction: [0.25, 1],
  temperature: [1, 2, 4],
  topK: [8, 'dense'],
  optimiser: ['sgd', 'adam'],
}
const plan = (a: SweepAxes = axes, systems: readonly string[] = SYSTEMS, out = '/out') =>
  planSweep(fsddPrep('/data', out, base), base, a, systems, out)
const argOf = (cmd: string[] | undefined, flag: string) =>
  cmd && cmd.indexOf(flag) >= 0 ? cmd[cmd.indexOf(flag) + 1] : undefined

t.test('the planner shares teachers and soft targets: one infer per teacher setting and top-k', async (t) => {
  const p = plan()
  planOrder(p.recipe) // no output produced twice, no cycle
  const steps = p.recipe.steps
  const teachers = steps.filter((s) => s.cmd?.[0] === 'train-teacher' && s.name !== 'align-dnn')
  const infers = steps.filter((s) => s.cmd?.[0] === 'infer' && s.outputs[0].includes('/soft/'))
  // teacher settings: 2 fractions × 2 seeds × {dnn, dnn-rbm}; temperatures and optimisers add none
  t.equal(teachers.length, 2 * 2 * 2)
  t.equal(infers.length, teachers.length * 2, 'one soft-target file per teacher and top-k, not per student')
  for (const tr of teachers) {
    const model = tr.outputs[0]
    t.equal(infers.filter((i) => i.inputs[0] === model).length, 2, `${tr.name}: read by one infer per top-k`)
  }
  const students = steps.filter((s) => s.cmd?.[0] === 'train-student')
  const count = (sys: string) => students.filter((s) => s.name.startsWith(`${sys}.`)).length
  t.equal(count('lstm-baseline'), 2 * 2 * 2, 'the baseline depends on fraction, seed and optimiser only')
  t.equal(count('lstm-kt'), 2 * 2 * 3 * 2 * 2, 'kt depends on every axis')
  const softOut = new Set(infers.map((i) => i.outputs[0]))
  for (const s of students) {
    const soft = argOf(s.cmd, '--soft')
    if (soft) t.ok(softOut.has(soft), `${s.name} reads a planned soft-target file`)
  }
  // students differing only by temperature read the very same file
  const ktT = (T: number) => students.find((s) => s.name === `lstm-kt.f0.25.s1.k8.T${T}.sgd`)!
  t.equal(argOf(ktT(1).cmd, '--soft'), argOf(ktT(4).cmd, '--soft'))
  t.equal(argOf(ktT(4).cmd, '--temperature'), '4')
  // fraction 1 keeps the recipe's command (no subset flags); 0.25 is balanced by speaker
  const t1 = teachers.find((s) => s.name === 'dnn.f1.s1')!
  t.equal(argOf(t1.cmd, '--data-fraction'), undefined)
  const t25 = teachers.find((s) => s.name === 'dnn.f0.25.s1')!
  t.equal(argOf(t25.cmd, '--data-fraction'), '0.25')
  t.equal(argOf(t25.cmd, '--utt2spk'), '/out/data/train/utt2spk')
  t.ok(t25.inputs.includes('/out/data/train/utt2spk'), 'the speaker map is an input of the step key')
  // one report over every point × system × seed
  t.equal(p.runs.length, p.points.length * SYSTEMS.length * 2)
  t.equal(steps.filter((s) => s.name === 'sweep-report').length, 1)
})

t.test('the same sweep planned twice is the same plan (names are stable)', async (t) => {
  const a = plan().recipe.steps.map((s) => [s.name, s.cmd ?? null])
  const b = plan().recipe.steps.map((s) => [s.name, s.cmd ?? null])
  t.same(a, b)
})

t.test('a sweep over one axis reuses the steps of a sweep over another (same names)', async (t) => {
  const byFraction = plan({ dataFraction: [0.25, 1], temperature: [2], topK: [8], optimiser: ['sgd'] })
  const byTemperature = plan({ dataFraction: [1], temperature: [1, 2, 4], topK: [8], optimiser: ['sgd'] })
  const names = new Set(byFraction.recipe.steps.map((s) => JSON.stringify([s.name, s.cmd ?? null])))
  const shared = byTemperature.recipe.steps.filter((s) => s.cmd && names.has(JSON.stringify([s.name, s.cmd])))
  t.ok(
    shared.some((s) => s.name === 'lstm-kt.f1.s1.k8.T2.sgd'),
    'the T=2 student at fraction 1 is one step',
  )
  t.ok(
    shared.some((s) => s.name === 'soft-dnn.f1.s1.k8'),
    'so is its soft-target file',
  )
})

t.test('systems: students bring their teachers; unknown names are refused', async (t) => {
  const p = plan({ dataFraction: [1], temperature: [2], topK: [8], optimiser: ['sgd'] }, ['lstm-kt-rbm'])
  t.same([...new Set(p.runs.map((r) => r.system))], ['dnn-rbm', 'lstm-kt-rbm'])
  t.throws(() => plan(axes, ['lstm-kt', 'lstm-nope']), /unknown system 'lstm-nope'/)
})

t.test('optimiser learning rates: momentum scaled by 1 − μ, Adam a constant', async (t) => {
  const pt = { dataFraction: 1, temperature: 2, topK: 8 as const, optimiser: 'momentum' as const }
  t.equal(pointConfig(base, pt).student.lr, base.student.lr * 0.1)
  t.equal(pointConfig(base, { ...pt, optimiser: 'adam' }).student.ktLr, 0.002)
  t.equal(
    pointConfig({ ...base, optimiserRates: { adam: { lr: 0.01 } } }, { ...pt, optimiser: 'adam' }).student.lr,
    0.01,
  )
  t.equal(pointConfig(base, { ...pt, optimiser: 'sgd' }).student.lr, base.student.lr)
})

t.test('balanced data fractions: each speaker keeps its share, and subsets nest', async (t) => {
  const dir = tmp('ktp-sweep-spk-')
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom('ann', 'bob', 'cy'), fc.integer({ min: 0, max: 9999 })), {
        minLength: 1,
        maxLength: 60,
      }),
      fc.double({ min: 0.05, max: 1, noNaN: true }),
      fc.double({ min: 0.05, max: 1, noNaN: true }),
      (pairs, a, b) => {
        const utts = [...new Set(pairs.map(([s, i]) => `${s}-${i}`))]
        const path = join(dir, 'utt2spk')
        writeFileSync(path, utts.map((u) => `${u} ${u.split('-')[0]}\n`).join(''))
        const [lo, hi] = a < b ? [a, b] : [b, a]
        const small = balancedSubset(utts, path, lo)
        const large = balancedSubset(utts, path, hi)
        for (const u of utts) if (small(u) && !large(u)) return false
        for (const spk of ['ann', 'bob', 'cy']) {
          const mine = utts.filter((u) => u.startsWith(`${spk}-`))
          if (!mine.length) continue
          if (mine.filter(small).length !== Math.max(1, Math.round(lo * mine.length))) return false
        }
        return true
      },
    ),
    { numRuns: 200 },
  )
  writeFileSync(join(dir, 'utt2spk'), 'ann-1 ann\n')
  t.throws(() => balancedSubset(['ann-1', 'zed-2'], join(dir, 'utt2spk'), 0.5), { message: /'zed-2' has no speaker/ })
})

t.test('gain verdicts: beyond noise means a 95 % t interval that excludes zero', async (t) => {
  t.equal(gainVerdict(stat([10, 11, 9])), 'positive beyond noise')
  // mean 3.5, se 0.5: two standard errors would call it, t with 1 degree of freedom (12.7 se) does not
  t.equal(gainVerdict(stat([3, 4])), 'within noise')
  t.equal(gainVerdict(stat([3, 4, 3.5, 3.2, 3.8, 3.6])), 'positive beyond noise')
  t.equal(gainVerdict(stat([-10, -11, -9])), 'negative beyond noise')
  t.equal(gainVerdict(stat([5, -4, 1])), 'within noise')
  t.equal(gainVerdict(stat([5])), 'one seed: no noise estimate')
  t.same(stat([1, 2, 3]), { mean: 2, std: 1, n: 3 })
})

t.test('the report: one row per point × system × seed, SVG plots referenced, an honest reading', async (t) => {
  const out = tmp('ktp-sweep-report-')
  const a: SweepAxes = { dataFraction: [0.25, 1], temperature: [2], topK: [8], optimiser: ['sgd'] }
  const p = plan(a, ['lstm-baseline', 'lstm-kt'], out)
  mkdirSync(join(out, 'eval'), { recursive: true })
  // made-up error rates: KT gains 10 ± 1 points at a quarter of the data, nothing at all of it
  const wer = (sys: string, f: number, seed: number) =>
    sys === 'lstm-baseline'
      ? 50 + seed
      : sys === 'lstm-kt'
        ? f < 1
          ? 40 + seed + (seed === 2 ? 1 : 0)
          : 50 + (seed === 1 ? 4 : -3)
        : 45
  for (const r of p.runs)
    writeFileSync(
      r.eval,
      JSON.stringify({ wer: wer(r.system, r.point.dataFraction, r.seed), frame_accuracy: 40, dev_wer: 30 }),
    )
  await writeSweepReport({ task: 'toy', metric: 'WER', out, axes: a, runs: p.runs, config: {} })
  const sweep = JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8'))
  t.equal(sweep.rows.length, 2 /* fractions */ * 3 /* systems */ * 2 /* seeds */)
  t.same(Object.keys(sweep.rows[0]).sort(), [
    'data_fraction',
    'dev_value',
    'frame_accuracy',
    'id',
    'optimiser',
    'seed',
    'system',
    'temperature',
    'top_k',
    'value',
  ])
  const md = readFileSync(join(out, 'report.md'), 'utf8')
  for (const svg of ['error-vs-fraction.svg', 'kt-gain.svg']) {
    t.match(md, `](${svg})`, `${svg} referenced`)
    t.ok(existsSync(join(out, svg)) && readFileSync(join(out, svg), 'utf8').startsWith('<svg'), `${svg} rendered`)
  }
  t.match(
    md,
    /\*\*lstm-kt\*\* vs lstm-baseline: positive beyond noise at data fraction 0\.25; within noise at data fraction 1\./,
  )
})

t.test('ktp sweep --dry-run prints the plan and the sharing it found', async (t) => {
  const out = tmp('ktp-sweep-cli-')
  const r = ktp([
    'sweep',
    'fsdd',
    '--out',
    out,
    '--quick',
    '--data-fraction',
    '0.25,1',
    '--temperature',
    '1,2',
    '--seeds',
    '2',
    '--dry-run',
  ])
  t.equal(r.code, 0, r.code === 0 ? 'exit 0' : r.stderr.slice(-2000))
  // 2 fractions × 2 seeds × (2 teachers + 1 baseline + 4 KT students × 2 temperatures) + the alignment DNN
  t.match(r.stderr, /4 point\(s\) × seeds 1,2: 45 models to train, 8 soft-target file\(s\)/)
  t.match(r.stderr, /soft-dnn\.f0\.25\.s2\.k8 +would run/)
  const bad = ktp(['sweep', 'fsdd', '--out', out, '--quick', '--data-fraction', '0,1', '--dry-run'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /--data-fraction: '0' is not a valid value/)
})
