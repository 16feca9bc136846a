import { localExecutor } from './local-executor.js'
import { onAbort, stoppable, stoppedBy } from '../io/signals.js'
import {
  type Executor,
  type Recipe,
  type RunRecipeOptions,
  type StepOutcome,
  lockOutDir,
  makePlan,
  stopChildren,
} from './plan.js'

/**
 * The recipe runner: a recipe is a DAG of steps, each a `ktp` command or an in-process function,
 * with declared inputs and outputs (plan.ts). A run plans the recipe (its steps in dependency
 * order, those `--from/--until` select) and hands the plan to an executor: the local one
 * (default) runs the stale steps on this machine; the Slurm one submits them as jobs. A step runs
 * only when it is stale, like make but keyed by content rather than by time, and its stamp is
 * written only after it succeeded. So an unchanged rerun does nothing, a changed option reruns
 * that step and only what depends on its changed output, and a step killed midway simply runs
 * again (resuming its own partial output).
 */
export {
  type Executor,
  type Recipe,
  type RunRecipeOptions,
  type Step,
  type StepOutcome,
  inputFingerprint,
  lockOutDir,
  planOrder,
  stepKey,
} from './plan.js'

/**
 * Run a recipe into `o.out`. One runner per output directory (the lock), except a cluster job
 * (`only`): its submitter holds the lock for it while it waits, and steps never share outputs.
 */
export async function runRecipe(
  recipe: Recipe,
  o: RunRecipeOptions,
  executor: Executor = localExecutor,
): Promise<StepOutcome[]> {
  const plan = makePlan(recipe, o)
  const unlock = o.dryRun || o.only ? () => {} : lockOutDir(o.out)
  const forget = onAbort(unlock)
  stopChildren(null)
  try {
    // locally, a signal stops the steps under way at their boundaries (a cluster's jobs are the
    // cluster's: the runner itself just stops, see pipeline/io/signals.ts)
    if (executor !== localExecutor) return await executor.run(plan, o)
    return await stoppable(stopChildren, async (stop) => {
      const outcomes = await executor.run(plan, o)
      if (stop.signal)
        throw stoppedBy(
          stop.signal,
          `ktp run: stopped by ${stop.signal}; the steps under way kept their checkpoints and finished work: run the same command again to continue`,
        )
      return outcomes
    })
  } finally {
    forget()
    unlock()
  }
}
