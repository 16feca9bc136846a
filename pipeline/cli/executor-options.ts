import { z } from 'zod'
import { KtpError } from '../../schemas/errors.js'
import { kebab } from '../io/options.js'
import { localExecutor } from '../recipes/local-executor.js'
import type { Executor, RunRecipeOptions } from '../recipes/runner.js'
import { readSlurmConfig } from '../recipes/slurm-config.js'
import { slurmExecutor } from '../recipes/slurm-executor.js'
import { CLI } from '../recipes/plan.js'
import { splitWords } from '../recipes/slurm-jobs.js'

/**
 * `--executor local|slurm` and its options, shared by `ktp run` and `ktp sweep`; and the options a
 * cluster job adds to the user's command line to run one step of the plan (`--only-step`, with
 * `--shard-task i/N` or `--merge-shards N` for a shardable step).
 */
export const executorCliOptions = {
  executor: z
    .enum(['local', 'slurm'])
    .default('local')
    .describe('local: run the steps here; slurm: submit each stale step as an sbatch job'),
  slurmOpts: z
    .string()
    .optional()
    .describe('slurm: extra sbatch flags for every job, e.g. "--partition=cpu --account=speech"'),
  slurmConfig: z
    .string()
    .optional()
    .describe('slurm: a JSON file {partition, opts, shards, poll, resources: {STEP|COMMAND: {cpus, mem, time}}}'),
  wait: z
    .boolean()
    .default(true)
    .describe('slurm: wait for the jobs, printing their progress (--no-wait: submit and return)'),
  onlyStep: z.string().optional().describe('run only this step of the plan (what a cluster job runs)'),
  shardTask: z.string().optional().describe('with --only-step: run part i/N of a shardable step (features, infer)'),
  mergeShards: z.number().int().min(1).optional().describe('with --only-step: merge the N parts of a shardable step'),
}

type ExecutorCli = {
  executor: 'local' | 'slurm'
  slurmOpts?: string
  slurmConfig?: string
  wait: boolean
  onlyStep?: string
  shardTask?: string
  mergeShards?: number
}

/** Options that choose how this run executes, not what it computes: a job's command line drops them. */
const RUN_ONLY = new Set([
  'executor',
  'slurm-opts',
  'slurm-config',
  'wait',
  'no-wait',
  'dry-run',
  'no-dry-run',
  'from',
  'until',
  'jobs',
  'only-step',
  'shard-task',
  'merge-shards',
  'out',
  'demo',
])
const FLAGS = new Set(['wait', 'no-wait', 'dry-run', 'no-dry-run', 'demo'])

/**
 * The user's command line (`process.argv` after the script) as a job runs it: without the
 * executor's options, with `--out` absolute, and the demo spelled out as `--quick`.
 */
export function jobArgs(argv: string[], out: string, demo: boolean): string[] {
  const args: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const m = /^--?([^=]+)(=.*)?$/.exec(a)
    const name = m ? kebab(m[1]) : ''
    if (m && (RUN_ONLY.has(name) || name === 'o')) {
      // a value in the next word, unless given with '=' or the option is a flag
      if (!m[2] && !FLAGS.has(name) && i + 1 < argv.length) i++
      continue
    }
    args.push(a)
  }
  return [...args, ...(demo ? ['--quick'] : []), '--out', out]
}

function shardTask(s: string | undefined): RunRecipeOptions['shardTask'] {
  if (s === undefined) return undefined
  const m = /^(\d+)\/(\d+)$/.exec(s)
  if (!m) throw new KtpError('usage', `--shard-task ${s}: expected i/N`)
  return { index: Number(m[1]), count: Number(m[2]) }
}

/** The executor a run uses, and the job-side options of `--only-step`. */
export function chooseExecutor(
  cli: ExecutorCli,
  out: string,
  demo = false,
): { executor: Executor; only: Pick<RunRecipeOptions, 'only' | 'shardTask' | 'mergeShards'> } {
  if ((cli.shardTask || cli.mergeShards) && !cli.onlyStep)
    throw new KtpError('usage', '--shard-task and --merge-shards go with --only-step')
  const only = { only: cli.onlyStep, shardTask: shardTask(cli.shardTask), mergeShards: cli.mergeShards }
  if (cli.executor === 'local') return { executor: localExecutor, only }
  if (cli.onlyStep) throw new KtpError('usage', '--only-step runs the step here: it goes with --executor local')
  const executor = slurmExecutor({
    config: readSlurmConfig(cli.slurmConfig),
    opts: splitWords(cli.slurmOpts ?? ''),
    wait: cli.wait,
    cwd: process.cwd(),
    node: process.execPath,
    cli: CLI,
    args: jobArgs(process.argv.slice(2), out, demo),
  })
  return { executor, only }
}
