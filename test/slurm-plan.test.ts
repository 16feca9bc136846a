import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { jobArgs } from '../pipeline/cli/executor-options.js'
import { makePlan } from '../pipeline/recipes/plan.js'
import { mergeParts, shardPart } from '../pipeline/recipes/shards.js'
import { readSlurmConfig, slurmConfigSchema, stepResources } from '../pipeline/recipes/slurm-config.js'
import { sbatchScript, shellQuote, slurmJobs, splitWords } from '../pipeline/recipes/slurm-jobs.js'
import { infer } from '../pipeline/recipes/steps.js'
import { ktp, tmp } from './helpers.js'

// The Slurm executor's plan, without a cluster: which jobs, their dependencies, arrays and
// command lines. test/slurm-live.test.ts runs them on a real Slurm.

t.test('a shardable step is a job array of its parts and a merge; dependencies follow the inputs', async (t) => {
  const out = '/x/out'
  const post = infer('post', { model: '/x/out/dnn', feats: '/x/out/f.arrow', out: '/x/out/post.arrow' })
  const steps = [
    { name: 'train', cmd: ['train-teacher', '-o', '/x/out/dnn'], inputs: [], outputs: ['/x/out/dnn'] },
    post,
    { name: 'score', inputs: ['/x/out/post.arrow'], outputs: ['/x/out/s.json'], config: {}, fn: async () => {} },
  ]
  const plan = makePlan({ name: 'toy', steps }, { out })
  const config = slurmConfigSchema.parse({ shards: 3, partition: 'cpu', resources: { infer: { mem: '3G' } } })
  const ctx = {
    out,
    cwd: '/x',
    node: '/bin/node',
    cli: '/k/main.js',
    args: ['run', 'toy', '--out', out],
    opts: [],
    config,
  }
  const jobs = slurmJobs(ctx, plan.steps)
  t.same(
    jobs.map((j) => [j.step, j.kind, j.after]),
    [
      ['train', 'step', []],
      ['post', 'array', [0]],
      ['post', 'merge', [1]],
      ['score', 'step', [2]],
    ],
  )
  t.ok(jobs[1].flags.includes('--array=1-3'))
  t.ok(jobs[1].flags.includes('--mem=3G'), 'resources by command from the config')
  t.ok(jobs[0].flags.includes('--mem=4G') && jobs[0].flags.includes('--time=8:00:00'), 'training defaults')
  t.ok(jobs[0].flags.includes('--partition=cpu'))
  t.equal(
    jobs[1].command,
    '/bin/node /k/main.js run toy --out /x/out --only-step post --shard-task "$SLURM_ARRAY_TASK_ID/3"',
  )
  t.equal(jobs[2].command, '/bin/node /k/main.js run toy --out /x/out --only-step post --merge-shards 3')
  const script = sbatchScript(jobs)
  t.match(script[2], /^j_post=\$\(sbatch --parsable .*"--dependency=afterok:\$j_post_parts" --kill-on-invalid-dep=yes/)
  t.same(
    slurmJobs(ctx, plan.steps.slice(2), new Map([['post', '42']])).map((j) => j.after),
    [['42']],
    'a step still queued from an earlier run is waited for by id',
  )

  t.same(shardPart(out, post, 2, 3).cmd?.slice(-4), [
    join(out, '.ktp-shards', 'post', 'part-2-of-3.arrow'),
    '--quiet',
    '--shard',
    '2/3',
  ])
  t.same(mergeParts(out, post, 2).cmd, [
    'merge',
    join(out, '.ktp-shards', 'post', 'part-1-of-2.arrow'),
    join(out, '.ktp-shards', 'post', 'part-2-of-2.arrow'),
    '-o',
    '/x/out/post.arrow',
    '--quiet',
  ])
  t.same(stepResources(config, steps[2]), { cpus: 1, mem: '2G', time: '1:00:00' }, 'in-process steps: the defaults')
})

t.test('command lines: quoting, option strings, what a job drops from the user command', async (t) => {
  t.equal(shellQuote('a.b/c-1'), 'a.b/c-1')
  t.equal(shellQuote(`it's {"a":1}`), `'it'\\''s {"a":1}'`)
  t.same(splitWords(`--partition=cpu  --comment 'a b' --x="c d"`), ['--partition=cpu', '--comment', 'a b', '--x=c d'])
  t.same(
    jobArgs(
      [
        'run',
        'fsdd',
        '--quick',
        '--executor',
        'slurm',
        '--slurm-opts=--qos=x',
        '--no-wait',
        '--jobs',
        '2',
        '--set',
        'a=1',
        '-o',
        'rel',
      ],
      '/abs/out',
      false,
    ),
    ['run', 'fsdd', '--quick', '--set', 'a=1', '--out', '/abs/out'],
  )
  t.match(readSlurmConfigError({ shards: 0 }), /--slurm-config .*shards/)
})

function readSlurmConfigError(cfg: unknown): string {
  const f = join(tmp('ktp-slurmcfg-'), 'c.json')
  writeFileSync(f, JSON.stringify(cfg))
  try {
    readSlurmConfig(f)
    return ''
  } catch (err) {
    return (err as Error).message
  }
}

t.test('ktp run --executor slurm --dry-run prints the sbatch script and needs no cluster', async (t) => {
  const out = tmp('ktp-slurm-dry-')
  const r = ktp(['run', 'fsdd', '--quick', '--out', out, '--executor', 'slurm', '--dry-run', '--slurm-opts=--qos=low'])
  t.equal(r.code, 0, r.stderr)
  const lines = r.stdout.toString().trim().split('\n')
  t.equal(
    lines.length,
    54 + 22,
    '54 steps (the last writes the web site); the 22 shardable ones (3 features, 19 infer) add a merge job each',
  )
  t.match(
    lines[0],
    /^j_connect_digits=\$\(sbatch --parsable --job-name=ktp:connect-digits .* --qos=low --wrap '.*main\.js run fsdd --quick --out .* --only-step connect-digits'\)$/,
  )
  t.match(r.stderr, /features-train\s+would be submitted \(connect-digits runs first\)/)
})
