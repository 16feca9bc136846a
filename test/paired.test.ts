import t from 'tap'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pairedInterval, tQuantile, verdict } from '../pipeline/recipes/paired.js'
import { writeReport } from '../pipeline/recipes/report.js'
import { tmp } from './helpers.js'

// Student-t quantiles from printed tables (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2), 4-5 digits
t.test('t quantiles: golden values', async (t) => {
  const golden: [number, number, number][] = [
    [0.975, 1, 12.706],
    [0.975, 2, 4.303],
    [0.975, 5, 2.5706],
    [0.975, 11, 2.201],
    [0.975, 30, 2.0423],
    [0.8, 1, 1.3764],
    [0.8, 5, 0.9195],
    [0.8, 11, 0.8755],
    [0.95, 10, 1.8125],
  ]
  for (const [p, df, q] of golden)
    t.ok(Math.abs(tQuantile(p, df) - q) < 6e-4, `t(${p}, ${df}) = ${tQuantile(p, df)} ≈ ${q}`)
  t.ok(Math.abs(tQuantile(0.975, 1e6) - 1.96) < 1e-3, 'large df: the normal 1.96')
  t.ok(Math.abs(tQuantile(0.025, 5) + 2.5706) < 6e-4, 'symmetric')
})

t.test('paired interval: a worked example', async (t) => {
  // diffs 1..6: mean 3.5, sd √3.5 = 1.8708, se 0.76376; t(0.975,5) = 2.57058, t(0.8,5) = 0.91954
  const p = pairedInterval([1, 2, 3, 4, 5, 6])
  t.equal(p.n, 6)
  t.ok(Math.abs(p.mean - 3.5) < 1e-12)
  t.ok(Math.abs(p.sd! - 1.870829) < 1e-6)
  t.ok(Math.abs(p.lo! - (3.5 - 2.570582 * 0.763763)) < 1e-4, `lo ${p.lo}`)
  t.ok(Math.abs(p.hi! - 5.463348) < 1e-4, `hi ${p.hi}`)
  t.ok(Math.abs(p.mde! - (2.570582 + 0.919544) * 0.763763) < 1e-4, `mde ${p.mde}`)
  t.equal(verdict(p, 'positive'), 'supported')
  t.equal(verdict(p, 'negative'), 'contradicted')
  t.equal(verdict(pairedInterval([-1, 0.5, 1]), 'negative'), 'inconclusive')
})

t.test('one pair: a mean, no interval, never "supported"', async (t) => {
  const p = pairedInterval([-7])
  t.same(p, { n: 1, mean: -7, sd: null, lo: null, hi: null, mde: null })
  t.equal(verdict(p, 'negative'), 'inconclusive')
  t.equal(verdict(pairedInterval([]), 'negative'), 'not measured')
})

/** A fake run: eval JSONs of every system for the given folds and seeds, errors from `wer`. */
/** The pooled report of a fake run of one seed. */
function toyReport(r: ReturnType<typeof fakeRun>) {
  return writeReport({
    task: 'toy',
    metric: 'WER',
    out: r.out,
    seeds: [1],
    systems: r.systems,
    config: {},
    folds: r.folds,
  })
}

function fakeRun(folds: string[], seeds: number[], wer: (sys: string, fold: number, seed: number) => number) {
  const out = tmp('ktp-report-')
  const systems = ['dnn', 'dnn-rbm', 'lstm-baseline', 'lstm-kt', 'lstm-kt-rbm', 'lstm-regularise', 'lstm-layerwise-kt']
  folds.forEach((f, i) => {
    const dir = join(out, f)
    mkdirSync(join(dir, 'eval'), { recursive: true })
    for (const s of ['train', 'dev', 'test']) {
      mkdirSync(join(dir, 'data', s), { recursive: true })
      writeFileSync(join(dir, 'data', s, 'utt2spk'), `${s}${i}-0001 ${s}${i}\n`)
    }
    for (const sys of systems)
      for (const seed of seeds) {
        const e = { wer: wer(sys, i, seed), dev_wer: 9, frame_accuracy: 80 - wer(sys, i, seed), acoustic_scale: 0.3 }
        const full = { ...e, insertion_penalty: -3, test_words: 100, test_utterances: 28 }
        writeFileSync(join(dir, 'eval', `${sys}.s${seed}.json`), JSON.stringify(full))
      }
  })
  return { out, systems, folds: folds.map((name) => ({ name, dir: join(out, name) })) }
}

t.test('report: per-fold table, paired claims, test-set size, decoder settings', async (t) => {
  // lstm-kt beats lstm-baseline by 2 ± a little on every fold: C1 supported; C2 the other way
  const jitter = [0.1, -0.2, 0.3, 0, -0.1, 0.2]
  const r = fakeRun(['fold-a', 'fold-b', 'fold-c', 'fold-d', 'fold-e', 'fold-f'], [1], (sys, f) =>
    sys === 'lstm-kt' ? 10 + jitter[f] : sys === 'dnn' ? 5 : 12,
  )
  await toyReport(r)
  const md = readFileSync(join(r.out, 'report.md'), 'utf8')
  t.match(md, '| system | fold-a | fold-b | fold-c | fold-d | fold-e | fold-f |')
  t.match(md, '| lstm-kt | 10.10 / 69.90 | 9.80 / 70.20 |')
  t.match(md, 'rest on 6 test speaker(s), 168 utterances and 600 words')
  t.match(md, '- fold-a: test test0 (28 utterances, 100 words); dev dev0; train train0')
  t.match(
    md,
    /\*\*C1\*\* `lstm-kt` beats `lstm-baseline` .*\*\*supported\*\* — lstm-kt − lstm-baseline = -1\.95 WER points, 95 % interval \[-2\.15, -1\.75\]/,
  )
  t.match(md, /\*\*C2\*\* .*\*\*contradicted\*\*/)
  t.match(md, 'fold-a.s1: 0.3 / -3')
  t.notMatch(md, 'std 0.00')
  const json = JSON.parse(readFileSync(join(r.out, 'results.json'), 'utf8'))
  const c1 = json.claims.find((c: { id: string }) => c.id === 'C1')
  t.equal(c1.value.n, 6)
  t.equal(c1.diffs.length, 6)
  t.equal(json.folds[0].test_units, 100)
  const svg = readFileSync(join(r.out, 'error-rates.svg'), 'utf8')
  t.match(svg, 'test WER (%)')
  t.notMatch(svg, 'test WER (%), lo', 'one y-axis title, not two joined')
})

t.test('report: one fold, one seed says so and reads nothing as supported', async (t) => {
  const r = fakeRun(['split'], [1], (sys) => (sys === 'lstm-kt' ? 3 : 20))
  await toyReport(r)
  const md = readFileSync(join(r.out, 'report.md'), 'utf8')
  t.match(md, /\*\*C1\*\* .*\*\*inconclusive\*\* — one pair: no interval/)
  t.notMatch(md, '**supported**')
  t.notMatch(md, 'std 0.00')
  t.match(md, '| lstm-kt | 3.00 | one run: none | 1 |')
})
