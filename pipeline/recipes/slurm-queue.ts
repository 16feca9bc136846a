import { execFileSync } from 'node:child_process'
import { KtpError } from '../../schemas/errors.js'

/**
 * What Slurm says about jobs, through its client commands (sbatch, squeue, scancel), so ktp needs
 * no Slurm library and works with any version that has `--parsable` (all current ones).
 */

/** Job states after which a job will not run again (squeue's long names). */
export const ENDED = new Set([
  'COMPLETED',
  'FAILED',
  'CANCELLED',
  'TIMEOUT',
  'OUT_OF_MEMORY',
  'NODE_FAIL',
  'BOOT_FAIL',
  'DEADLINE',
  'PREEMPTED',
  'REVOKED',
])

function client(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string }
    if (e.code === 'ENOENT')
      throw new KtpError('slurm', `${cmd} not found: --executor slurm needs the Slurm client commands on PATH`)
    const why = (e.stderr ?? '').trim().split('\n')[0] || e.message
    throw new KtpError('slurm', `${cmd} ${args.slice(0, 3).join(' ')}…: ${why}`)
  }
}

/** Submit one job; its id. */
export function sbatch(args: string[]): string {
  return client('sbatch', args).trim().split(';')[0]
}

export function scancel(ids: string[]): void {
  if (ids.length) client('scancel', ids)
}

/** One job or array task as squeue lists it. */
export interface QueuedJob {
  /** The job id (an array's id for each of its tasks). */
  job: string
  /** The array task id, or null for a plain job. */
  task: number | null
  state: string
  reason: string
}

/**
 * The jobs among `ids` that Slurm still knows (running, pending, and ended ones until it forgets
 * them, MinJobAge: five minutes by default). A job it has forgotten is simply absent. (All of the
 * user's jobs are listed and filtered here: `squeue -j` prints nothing at all when one id of its
 * list is already forgotten.)
 */
export function queueStates(ids: string[]): QueuedJob[] {
  if (!ids.length) return []
  const want = new Set(ids)
  return client('squeue', ['-h', '-r', '-t', 'all', '--me', '-o', '%F|%K|%T|%r'])
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [job, task, state, reason] = line.split('|')
      const t = Number.parseInt(task, 10)
      return { job, task: Number.isInteger(t) ? t : null, state, reason: reason ?? '' }
    })
    .filter((q) => want.has(q.job))
}
