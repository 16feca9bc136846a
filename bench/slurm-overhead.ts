/**
 * Scheduling overhead of `--executor slurm` per step, against the local executor:
 *
 *   SLURM_CONF=… node dist/bench/slurm-overhead.js [--repeats 2] [--shards 2] > bench/results/slurm-overhead.json
 *
 * Runs the data side of the fsdd quick recipe (`--until cmvn-test`: connect-digits, features ×3,
 * cmvn-stats, cmvn ×3, eight short steps whose own work is seconds) into a fresh output directory
 * with each executor, alternating, and reports the wall time of each run and the overhead per step,
 * (slurm − local) / steps. Local runs with `--jobs 2`, as many steps at once as a 2-CPU node runs.
 * It needs a Slurm (SLURM_CONF or the system's); test/slurm-live.test.ts starts a single-node one.
 * One JSON line per run and one summary line on stdout.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI } from '../pipeline/recipes/plan.js'

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? Number(process.argv[i + 1]) : dflt
}
const repeats = arg('repeats', 2)
const shards = arg('shards', 2)
const STEPS = 8
const base = ['run', 'fsdd', '--quick', '--until', 'cmvn-test']

function once(executor: 'local' | 'slurm'): number {
  const dir = mkdtempSync(join(tmpdir(), `ktp-bench-${executor}-`))
  const cfg = join(dir, 'slurm.json')
  writeFileSync(cfg, JSON.stringify({ shards, poll: 1, resources: { default: { mem: '1G' } } }))
  const extra = executor === 'local' ? ['--jobs', '2'] : ['--executor', 'slurm', '--slurm-config', cfg]
  const t0 = performance.now()
  const r = spawnSync(process.execPath, [CLI, ...base, '--out', join(dir, 'out'), ...extra], { encoding: 'utf8' })
  const s = (performance.now() - t0) / 1000
  if (r.status !== 0) throw new Error(`${executor} run failed (exit ${r.status}): ${r.stderr.slice(-2000)}`)
  return s
}

const runs: { executor: string; seconds: number }[] = []
for (let i = 0; i < repeats; i++) {
  for (const executor of ['local', 'slurm'] as const) {
    const seconds = once(executor)
    runs.push({ executor, seconds })
    process.stdout.write(`${JSON.stringify({ name: 'slurm-overhead-run', executor, seconds, steps: STEPS, shards })}\n`)
  }
}
const mean = (e: string) => {
  const xs = runs.filter((r) => r.executor === e).map((r) => r.seconds)
  return xs.reduce((a, b) => a + b, 0) / xs.length
}
const local = mean('local')
const slurm = mean('slurm')
process.stdout.write(
  `${JSON.stringify({
    name: 'slurm-overhead',
    unit: 's/step',
    local_s: +local.toFixed(2),
    slurm_s: +slurm.toFixed(2),
    steps: STEPS,
    jobs: STEPS + 3 * (shards > 1 ? 1 : 0),
    shards,
    repeats,
    overhead_per_step_s: +((slurm - local) / STEPS).toFixed(2),
    load_average: (await import('node:os')).loadavg().map((x) => +x.toFixed(1)),
    at: new Date().toISOString(),
  })}\n`,
)
