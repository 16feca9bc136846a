import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeFileAtomic } from '../io/atomic-file.js'
import type { Executor, Plan, PlannedStep, RunRecipeOptions, StepOutcome } from './plan.js'
import { staleReason } from './plan.js'
import { type JobContext, type SlurmJob, sbatchArgs, sbatchScript, slurmJobs } from './slurm-jobs.js'
import { ENDED, type QueuedJob, queueStates, sbatch, scancel } from './slurm-queue.js'

/**
 * The Slurm executor: the plan's stale steps become sbatch jobs (slurm-jobs.ts), each waiting
 * (`afterok`) for the jobs of its inputs' steps; then, unless `--no-wait`, it follows them in the
 * queue, prints each step as it starts and ends, and reports a failed job with its step, its id and
 * the end of its log. What is done is decided by the stamps the jobs write, as in a local run: a
 * cancelled or failed job leaves no stamp (and no whole-looking output), so the next run submits
 * that step again, and everything up to date is not submitted at all.
 */
export interface SlurmRun extends Omit<JobContext, 'out'> {
  wait: boolean
  /** Where the dry-run script goes (stdout). */
  print?: (line: string) => void
}

/** The jobs a run submitted, so that a later run can tell which of them are still queued. */
interface Submitted {
  step: string
  kind: SlurmJob['kind']
  id: string
}

const recordPath = (out: string) => join(out, '.ktp-slurm', 'jobs.json')

function readRecord(out: string): Submitted[] {
  try {
    return JSON.parse(readFileSync(recordPath(out), 'utf8')) as Submitted[]
  } catch {
    return []
  }
}

const LIVE = new Set(['PENDING', 'RUNNING', 'CONFIGURING', 'COMPLETING', 'REQUEUED', 'RESIZING', 'SUSPENDED'])

export function slurmExecutor(r: SlurmRun): Executor {
  return { run: (plan, o) => runSlurm(r, plan, o) }
}

async function runSlurm(r: SlurmRun, plan: Plan, o: RunRecipeOptions): Promise<StepOutcome[]> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`))
  const print = r.print ?? ((l: string) => process.stdout.write(`${l}\n`))
  const outcomes = new Map<string, StepOutcome>()
  const submit: (PlannedStep & { reason: string })[] = []
  const stale = new Set<string>()
  for (const p of plan.steps) {
    const s = p.step
    if (!p.selected) {
      outcomes.set(s.name, { name: s.name, state: 'skipped', reason: 'outside --from/--until' })
      continue
    }
    // a step after a stale one is submitted too: its job checks its key again once its inputs exist
    const rebuilt = p.deps.find((d) => stale.has(d))
    const reason = rebuilt ? `${rebuilt} runs first` : (await staleReason(plan, s)).reason
    if (!reason) {
      outcomes.set(s.name, { name: s.name, state: 'up-to-date' })
      log(`  ${s.name.padEnd(28)} up to date`)
      continue
    }
    stale.add(s.name)
    submit.push({ ...p, reason })
  }

  const ctx: JobContext = { ...r, out: plan.out }
  // a step still queued by an earlier run (--no-wait) is waited for, not submitted twice
  const queued = o.dryRun ? new Map<string, string>() : stillQueued(plan.out, new Set(submit.map((p) => p.step.name)))
  const toSubmit = submit.filter((p) => !queued.has(p.step.name))
  const jobs = slurmJobs(ctx, toSubmit, queued)
  if (o.dryRun) {
    for (const p of submit) {
      outcomes.set(p.step.name, { name: p.step.name, state: 'would-run', reason: p.reason })
      log(`  ${p.step.name.padEnd(28)} would be submitted (${p.reason})`)
    }
    for (const line of sbatchScript(jobs)) print(line)
    return plan.steps.map((p) => outcomes.get(p.step.name)!)
  }

  // Slurm opens the jobs' output files but does not make their folder
  mkdirSync(join(plan.out, 'log', 'slurm'), { recursive: true })
  const ids: string[] = []
  try {
    for (const j of jobs) {
      const after = j.after.map((a) => (typeof a === 'string' ? a : ids[a]))
      ids.push(sbatch(sbatchArgs(j, after)))
    }
  } catch (err) {
    // nothing half-submitted: a chain with a missing link would never run
    scancel(ids)
    throw err
  }
  const record: Submitted[] = [
    ...[...queued].map(([step, id]) => ({ step, kind: 'step' as const, id })),
    ...jobs.map((j, i) => ({ step: j.step, kind: j.kind, id: ids[i] })),
  ]
  writeFileAtomic(recordPath(plan.out), JSON.stringify(record, null, 1))
  for (const p of submit) {
    const mine = record.filter((x) => x.step === p.step.name)
    const what = queued.has(p.step.name)
      ? `already queued as job ${queued.get(p.step.name)}`
      : mine
          .map((x) => `${x.kind === 'array' ? `array ${x.id}` : x.kind === 'merge' ? `merge ${x.id}` : `job ${x.id}`}`)
          .join(', ')
    log(`  ${p.step.name.padEnd(28)} submitted: ${what} (${p.reason})`)
  }
  if (!r.wait) {
    for (const p of submit) outcomes.set(p.step.name, { name: p.step.name, state: 'submitted' })
    log(`  not waiting (--no-wait): follow them with  squeue -j ${record.map((x) => x.id).join(',')}`)
    return plan.steps.map((p) => outcomes.get(p.step.name)!)
  }
  await follow(r, plan, submit, record, outcomes, log)
  return plan.steps.map((p) => outcomes.get(p.step.name)!)
}

/** The steps among `stale` whose last job from an earlier run is still pending or running. */
function stillQueued(out: string, stale: Set<string>): Map<string, string> {
  const last = new Map<string, string>()
  for (const x of readRecord(out)) if (stale.has(x.step)) last.set(x.step, x.id)
  const live = new Set(
    queueStates([...new Set([...readRecord(out)].filter((x) => stale.has(x.step)).map((x) => x.id))])
      .filter((q) => LIVE.has(q.state))
      .map((q) => q.job),
  )
  // a sharded step is queued only if its merge (its last job) is
  return new Map([...last].filter(([, id]) => live.has(id)))
}

/** Follow the submitted jobs until each has ended: print state changes, and the log of a failure. */
async function follow(
  r: SlurmRun,
  plan: Plan,
  submit: PlannedStep[],
  record: Submitted[],
  outcomes: Map<string, StepOutcome>,
  log: (l: string) => void,
): Promise<void> {
  const shown = new Map<string, string>()
  const started = new Map<string, number>()
  const pollMs = r.config.poll * 1000
  for (;;) {
    const open = submit.filter((p) => !outcomes.has(p.step.name))
    if (!open.length) return
    const states = queueStates([
      ...new Set(record.filter((x) => open.some((p) => p.step.name === x.step)).map((x) => x.id)),
    ])
    for (const p of open) {
      const s = p.step
      const failedDep = p.deps.find((d) => ['failed', 'skipped'].includes(outcomes.get(d)?.state ?? ''))
      const mine = record.filter((x) => x.step === s.name)
      const tasks = mine.flatMap((x) => states.filter((q) => q.job === x.id).map((q) => ({ x, q })))
      const bad = tasks.find(({ q }) => ENDED.has(q.state) && q.state !== 'COMPLETED')
      if (failedDep && (!tasks.length || bad || tasks.every(({ q }) => !LIVE.has(q.state) || q.state === 'PENDING'))) {
        if (tasks.some(({ q }) => LIVE.has(q.state))) scancel(mine.map((x) => x.id))
        outcomes.set(s.name, { name: s.name, state: 'skipped', reason: `${failedDep} failed` })
        log(`  ${s.name.padEnd(28)} skipped (${failedDep} failed)`)
        continue
      }
      if (bad) {
        const id = `${bad.q.job}${bad.q.task !== null ? `_${bad.q.task}` : ''}`
        const end = tail(stepLogs(plan, s.name, bad.x.kind, bad.q))
        outcomes.set(s.name, { name: s.name, state: 'failed', reason: `job ${id} ${bad.q.state}; see ${end.path}` })
        log(`  ${s.name.padEnd(28)} FAILED: job ${id} ${bad.q.state} (${bad.q.reason}); the end of ${end.path}:`)
        for (const l of end.lines) log(`      ${l}`)
        continue
      }
      const running = tasks.some(({ q }) => q.state === 'RUNNING')
      if (running && !started.has(s.name)) started.set(s.name, Date.now())
      const summary = running ? 'RUNNING' : tasks.length ? tasks[0].q.state : 'gone'
      const complete =
        tasks.length > 0 &&
        tasks.every(({ q }) => q.state === 'COMPLETED') &&
        mine.every((x) => tasks.some(({ q }) => q.job === x.id))
      // Slurm forgets an ended job after MinJobAge: then the stamp tells whether it succeeded
      const forgotten = tasks.length === 0
      if (complete || forgotten) {
        const done = !(await staleReason(plan, s)).reason
        if (done) {
          const seconds = (Date.now() - (started.get(s.name) ?? Date.now())) / 1000
          outcomes.set(s.name, { name: s.name, state: 'ran', seconds })
          log(`  ${s.name.padEnd(28)} done (job ${mine[mine.length - 1].id})`)
        } else {
          outcomes.set(s.name, {
            name: s.name,
            state: 'failed',
            reason: `job ${mine.map((x) => x.id).join(',')} ended without a stamp`,
          })
          log(
            `  ${s.name.padEnd(28)} FAILED: job ${mine[mine.length - 1].id} ended but the step is not done; see ${stepLogs(plan, s.name, 'step', null)[0]}`,
          )
        }
        continue
      }
      if (shown.get(s.name) !== summary) {
        shown.set(s.name, summary)
        if (summary === 'RUNNING')
          log(`  ${s.name.padEnd(28)} running (job ${tasks.find(({ q }) => q.state === 'RUNNING')!.q.job})`)
      }
    }
    if (submit.some((p) => !outcomes.has(p.step.name))) await new Promise((res) => setTimeout(res, pollMs))
  }
}

/** The step's own log (what its ktp command printed), then Slurm's output file of the job. */
function stepLogs(plan: Plan, step: string, kind: SlurmJob['kind'], q: QueuedJob | null): string[] {
  const dir = join(plan.out, 'log')
  if (kind === 'array' && q && q.task !== null)
    return [join(dir, `${step}.shard-${q.task}.log`), join(dir, 'slurm', `${step}.part-${q.task}-${q.job}.out`)]
  if (kind === 'merge' && q) return [join(dir, `${step}.log`), join(dir, 'slurm', `${step}.merge-${q.job}.out`)]
  return [join(dir, `${step}.log`), ...(q ? [join(dir, 'slurm', `${step}-${q.job}.out`)] : [])]
}

/** The last lines of the first of these logs that exists and says anything. */
function tail(paths: string[], n = 12): { path: string; lines: string[] } {
  for (const path of paths) {
    if (!existsSync(path)) continue
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n')
    if (lines.length && lines[0] !== '') return { path, lines: lines.slice(-n) }
  }
  return { path: paths[0], lines: [`(no log: ${paths.join(', ')})`] }
}
