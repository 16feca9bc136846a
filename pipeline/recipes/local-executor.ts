import { rmSync } from 'node:fs'
import { join } from 'node:path'
import {
  CLI,
  type Executor,
  type Plan,
  type PlannedStep,
  type RunRecipeOptions,
  type Step,
  type StepOutcome,
  runChild,
  staleReason,
  stopRequested,
  writeStamp,
} from './plan.js'
import { mergeParts, shardDir, shardPart } from './shards.js'

/**
 * The local executor: the plan's stale steps on this machine, each `ktp` command as a child
 * process (so a step behaves exactly as a user's shell command), at most `jobs` at once, each
 * step after the steps it depends on. A cluster job runs one step of the plan through this same
 * executor (`only`, and for a shardable step one part or the merge), so a step's key, stamp and
 * log are written by the same code wherever it runs.
 */
export const localExecutor: Executor = { run: runLocal }

async function runLocal(plan: Plan, o: RunRecipeOptions): Promise<StepOutcome[]> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`))
  const outcomes = new Map<string, StepOutcome>()
  const finished = new Map<string, Promise<void>>()
  const jobs = Math.max(1, o.jobs ?? 1)
  let running = 0
  const waiters: (() => void)[] = []
  const acquire = async () => {
    while (running >= jobs) await new Promise<void>((r) => waiters.push(r))
    running++
  }
  const release = () => {
    running--
    waiters.shift()?.()
  }

  const runOne = async ({ step: s, deps, selected }: PlannedStep): Promise<void> => {
    await Promise.all(deps.map((d) => finished.get(d)))
    // a failure stops everything downstream, not only the next step (a report must not be
    // written, and stamped, from the evaluations that are missing because a model failed)
    const failedDep = deps.find((d) => {
      const dep = outcomes.get(d)
      return dep?.state === 'failed' || (dep?.state === 'skipped' && dep.reason?.endsWith(' failed'))
    })
    if (failedDep) {
      const dep = outcomes.get(failedDep)!
      const reason = dep.state === 'failed' ? `${failedDep} failed` : dep.reason
      outcomes.set(s.name, { name: s.name, state: 'skipped', reason })
      return
    }
    if (!selected) {
      outcomes.set(s.name, { name: s.name, state: 'skipped', reason: 'outside --from/--until' })
      return
    }
    const { reason, key } = await staleReason(plan, s)
    if (!reason) {
      outcomes.set(s.name, { name: s.name, state: 'up-to-date' })
      log(`  ${s.name.padEnd(28)} up to date`)
      return
    }
    if (o.dryRun) {
      outcomes.set(s.name, { name: s.name, state: 'would-run', reason })
      log(`  ${s.name.padEnd(28)} would run (${reason})${s.cmd ? `: ktp ${s.cmd.join(' ')}` : ''}`)
      return
    }
    await acquire()
    const stopped = stopRequested()
    if (stopped) {
      release()
      outcomes.set(s.name, { name: s.name, state: 'skipped', reason: `the run was stopped by ${stopped}` })
      return
    }
    const t0 = Date.now()
    // a cluster job: one part of a sharded step (stamped by its merge), or the merge of its parts
    const part = o.shardTask && shardPart(plan.out, s, o.shardTask.index, o.shardTask.count)
    const run: Step = part || (o.mergeShards ? mergeParts(plan.out, s, o.mergeShards) : s)
    const logPath = join(plan.out, 'log', `${part ? part.name : s.name}.log`)
    log(`  ${run.name.padEnd(28)} running (${reason})`)
    try {
      let code = 0
      if (run.cmd) code = await runChild(o.cli ?? CLI, run, logPath)
      else await run.fn!()
      const seconds = (Date.now() - t0) / 1000
      if (code === 0 || (code === 1 && s.allowPartial)) {
        if (!part) writeStamp(plan, s, key, seconds)
        if (o.mergeShards) rmSync(shardDir(plan.out, s), { recursive: true, force: true })
        outcomes.set(s.name, { name: s.name, state: 'ran', seconds })
        log(
          `  ${run.name.padEnd(28)} done in ${seconds.toFixed(1)} s${code === 1 ? ' (some utterances failed; see the log)' : ''}`,
        )
      } else {
        outcomes.set(s.name, { name: s.name, state: 'failed', reason: `exit code ${code}; see ${logPath}` })
        log(`  ${run.name.padEnd(28)} FAILED (exit ${code}); see ${logPath}`)
      }
    } catch (err) {
      outcomes.set(s.name, { name: s.name, state: 'failed', reason: (err as Error).message })
      log(`  ${run.name.padEnd(28)} FAILED: ${(err as Error).message}`)
    } finally {
      release()
    }
  }

  for (const p of plan.steps) finished.set(p.step.name, runOne(p))
  await Promise.all(finished.values())
  return plan.steps.map((p) => outcomes.get(p.step.name)!)
}
