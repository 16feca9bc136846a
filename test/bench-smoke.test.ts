/**
 * Smoke run of the benchmark harness (bench/run.ts, built to dist/bench/run.js by pretest): tiny
 * sizes, no Python references, no timing asserts — only that it runs and emits well-formed JSON
 * lines {name, ktp, reference, unit, ratio, ...}. The real figures are in BENCHMARKS.md.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { ROOT } from './helpers.js'

const RUN = join(ROOT, 'dist', 'bench', 'run.js')

function bench(args: string[]) {
  return spawnSync(process.execPath, [RUN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 })
}

t.test(
  'npm run bench -- infer soft-read --quick --no-reference emits one JSON line per result, the table on stderr',
  async (t) => {
    const r = bench(['infer', 'soft-read', '--quick', '--no-reference'])
    t.equal(r.status, 0, r.stderr)
    const lines = r.stdout.trim().split('\n')
    const rows = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
    t.same([...new Set(rows.map((x) => x.name))], ['infer', 'soft-read'], 'benchmarks in the order asked')
    t.same(
      rows.filter((x) => x.name === 'soft-read').map((x) => x.variant),
      ['dense-f16', 'top8-f16'],
      'one soft-read line per storage mode of the issue-16 table',
    )
    for (const x of rows) {
      for (const k of ['date', 'commit', 'machine', 'load_average', 'openblas_coretype', 'ktp_threads', 'bench_pid'])
        t.ok(k in x, `${String(x.name)} records ${k}`)
    }
    for (const x of rows) {
      t.ok(
        ['name', 'ktp', 'reference', 'unit', 'ratio'].every((k) => k in x),
        `${String(x.name)} has the common keys`,
      )
      t.type(x.unit, 'string')
      t.ok(
        typeof x.ktp === 'number' && (x.ktp as number) > 0,
        `${String(x.name)} ${String(x.variant ?? '')}: ktp is a positive number`,
      )
      t.equal(x.error, undefined)
    }
    const pids = (name: string) => new Set(rows.filter((x) => x.name === name).map((x) => x.bench_pid))
    t.equal(pids('soft-read').size, 1, 'the lines of one benchmark come from one process')
    t.not([...pids('infer')][0], [...pids('soft-read')][0], 'each benchmark runs in a process of its own')
    t.not([...pids('infer')][0], undefined)
    const infer = rows.find((x) => x.name === 'infer')!
    t.equal(infer.reference, null, 'reference skipped')
    t.equal(infer.ratio, null)
    t.match(r.stderr, /benchmark\s+ktp\s+reference\s+unit\s+ratio/, 'human table on stderr')
  },
)

t.test('an unknown benchmark name is a usage error (exit 2) naming the choices', async (t) => {
  const r = bench(['nonsense'])
  t.equal(r.status, 2)
  t.match(r.stderr, /unknown benchmark or option 'nonsense'.*features/)
  t.equal(r.stdout, '')
})

t.test('gemm --quick --no-reference: one line per product shape, a positive GFLOP/CPU-s rate, no goal', async (t) => {
  const r = bench(['gemm', '--quick', '--no-reference', '--json'])
  t.equal(r.status, 0, r.stderr)
  const rows = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
  t.same(
    rows.map((x) => x.variant),
    ['256x440x512', '256x512x512', '256x512x1000', '320x256x1024', '16x256x1024'],
    'the products the train and infer lines are made of',
  )
  for (const x of rows) {
    t.equal(x.unit, 'GFLOP/CPU-s')
    t.ok(typeof x.ktp === 'number' && (x.ktp as number) > 0.01, `${String(x.variant)}: rate ${String(x.ktp)}`)
    t.equal(x.goal, null, 'a measured limit, not a target')
    t.equal(x.reference, null)
  }
})
