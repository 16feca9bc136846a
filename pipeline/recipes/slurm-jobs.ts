import { join } from 'node:path'
import type { Step } from './plan.js'
import { type SlurmConfig, stepResources } from './slurm-config.js'

/**
 * The sbatch submissions of a plan's stale steps, as data: one job per step, or for a shardable
 * step a job array of its parts and one merge job after it. Each job's command is the user's own
 * `ktp run|sweep …` command line with `--only-step STEP` (and the part or the merge), so the job
 * plans the recipe exactly as the submitter did and runs that step through the local executor:
 * the step's stale check, its child `ktp` command and its stamp are the same code as a local run.
 */
export interface SlurmJob {
  /** The step this job (or the last job of a sharded step) completes. */
  step: string
  kind: 'step' | 'array' | 'merge'
  /** Array tasks (kind 'array'). */
  tasks?: number
  /** What it waits for: jobs of this submission (their index in the list), or ids already queued. */
  after: (number | string)[]
  /** sbatch flags, without the dependency (known only once those jobs have ids). */
  flags: string[]
  /** The job's shell command (`--wrap`). */
  command: string
}

export interface JobContext {
  out: string
  /** The working directory of every job (relative paths of the command line resolve there). */
  cwd: string
  /** node and the ktp CLI the jobs run (the same build as the submitter: a shared file system). */
  node: string
  cli: string
  /** The command line of this run without executor flags: `run fsdd --quick --out …`. */
  args: string[]
  /** Extra sbatch flags from `--slurm-opts`. */
  opts: string[]
  config: SlurmConfig
}

/** POSIX shell quoting: safe words stay bare, anything else is single-quoted. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`
}

/** Split an option string ("--partition=gpu --account 'my acct'") into words, as a shell would. */
export function splitWords(s: string): string[] {
  const words: string[] = []
  const re = /\s*(?:'([^']*)'|"((?:[^"\\]|\\.)*)"|((?:[^\s'"\\]|\\.)+))/g
  let cur: string | null = null
  let last = 0
  for (let m = re.exec(s); m; m = re.exec(s)) {
    if (m.index !== last || /^\s/.test(m[0])) {
      if (cur !== null) words.push(cur)
      cur = null
    }
    last = re.lastIndex
    const part = m[1] ?? (m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3].replace(/\\(.)/g, '$1'))
    cur = (cur ?? '') + part
  }
  if (cur !== null) words.push(cur)
  return words
}

/** The name squeue shows. */
export function jobName(step: string): string {
  return `ktp:${step}`
}

function jobFlags(c: JobContext, s: Step, logName: string): string[] {
  const r = stepResources(c.config, s)
  return [
    `--job-name=${jobName(s.name)}`,
    `--chdir=${c.cwd}`,
    `--output=${join(c.out, 'log', 'slurm', logName)}`,
    `--cpus-per-task=${r.cpus}`,
    `--mem=${r.mem}`,
    `--time=${r.time}`,
    ...(c.config.partition ? [`--partition=${c.config.partition}`] : []),
    ...splitWords(c.config.opts),
    ...c.opts,
  ]
}

function command(c: JobContext, step: string, extra: string[]): string {
  return [c.node, c.cli, ...c.args, '--only-step', step].map(shellQuote).concat(extra).join(' ')
}

/**
 * The jobs for these steps (in plan order), each waiting for the jobs of the steps it depends on
 * that are submitted too or still `queued` from an earlier run (any other dependency is up to date).
 */
export function slurmJobs(
  c: JobContext,
  submit: { step: Step; deps: string[] }[],
  queued: Map<string, string> = new Map(),
): SlurmJob[] {
  const jobs: SlurmJob[] = []
  const last = new Map<string, number | string>(queued)
  for (const { step: s, deps } of submit) {
    const after = deps.filter((d) => last.has(d)).map((d) => last.get(d)!)
    const n = c.config.shards
    if (s.shardable && n > 1) {
      jobs.push({
        step: s.name,
        kind: 'array',
        tasks: n,
        after,
        flags: [`--array=1-${n}`, ...jobFlags(c, s, `${s.name}.part-%a-%A.out`)],
        // the task id is expanded by the job's shell: the only unquoted word
        command: command(c, s.name, ['--shard-task', `"$SLURM_ARRAY_TASK_ID/${n}"`]),
      })
      jobs.push({
        step: s.name,
        kind: 'merge',
        after: [jobs.length - 1],
        flags: jobFlags(c, { ...s, cmd: ['merge'] }, `${s.name}.merge-%j.out`),
        command: command(c, s.name, ['--merge-shards', String(n)]),
      })
    } else {
      jobs.push({
        step: s.name,
        kind: 'step',
        after,
        flags: jobFlags(c, s, `${s.name}-%j.out`),
        command: command(c, s.name, []),
      })
    }
    last.set(s.name, jobs.length - 1)
  }
  return jobs
}

/** The sbatch arguments of a job once the jobs it waits for have ids. */
export function sbatchArgs(job: SlurmJob, afterIds: string[]): string[] {
  const dep = afterIds.length ? [`--dependency=afterok:${afterIds.join(':')}`, '--kill-on-invalid-dep=yes'] : []
  return ['--parsable', ...job.flags, ...dep, '--wrap', job.command]
}

/** A shell variable holding a job's id in the printed (dry-run) script. */
export function jobVar(job: SlurmJob): string {
  return `j_${job.step.replace(/[^A-Za-z0-9]/g, '_')}${job.kind === 'array' ? '_parts' : ''}`
}

/** The dry-run script: one `VAR=$(sbatch …)` line per job, dependencies through the variables. */
export function sbatchScript(jobs: SlurmJob[]): string[] {
  return jobs.map((j) => {
    const args = sbatchArgs(
      j,
      j.after.map((a) => (typeof a === 'string' ? a : `$${jobVar(jobs[a])}`)),
    )
    const words = args.map((a) => (a.startsWith('--dependency=') ? `"${a}"` : shellQuote(a)))
    return `${jobVar(j)}=$(sbatch ${words.join(' ')})`
  })
}
