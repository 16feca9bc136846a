import { canonicalJson } from '../../schemas/fingerprint.js'
import { KtpError } from '../../schemas/errors.js'
import type { Recipe, Step } from './runner.js'
import type { OptimizerName } from '../../stages/train/optimizer.js'
import { type SystemNaming, type Prepared, STUDENTS, addSystems, withTeachers } from './systems.js'
import type { StudentConfig, SystemsConfig } from './systems-config.js'
import { writeSweepReport } from './sweep-report.js'
import { type SweepAxes, type SweepPoint, type SweepRun, type TopK, sweepPoints } from './sweep-grid.js'

export { type SweepAxes, type SweepPoint, type SweepRun, type TopK, sweepPoints }

/**
 * `ktp sweep` (issue 10): a grid over training-data fraction, KT temperature, soft-target top-k
 * and the students' optimiser, on top of a recipe's data side. Every step is named by exactly the
 * settings it depends on — a teacher by data fraction and seed, its soft targets also by top-k, a
 * KT student by all four, the baseline by fraction and optimiser — so the planner merges identical
 * steps: one teacher and one soft-target file per teacher setting, however many temperatures or
 * optimisers use them. The recipe runner's content keys then make a rerun (or a resumed, killed
 * sweep) skip whatever is already built.
 */
/**
 * Learning rates per optimiser (both phases of a student). The recipes' rates are for plain SGD;
 * momentum μ = 0.9 multiplies the effective step by 1/(1−μ), so its rate is scaled down by ten,
 * and Adam's step is per-parameter normalised, so it takes the usual small constant.
 */
export const OPTIMISER_RATES: Record<OptimizerName, { lrScale?: number; lr?: number }> = {
  sgd: { lrScale: 1 },
  momentum: { lrScale: 0.1 },
  adam: { lr: 0.002 },
}

/** A sweep's base configuration: a recipe's, whose `optimiserRates` overrides OPTIMISER_RATES. */
export type SweepConfig = SystemsConfig

export interface SweepPlan {
  recipe: Recipe
  runs: SweepRun[]
  points: SweepPoint[]
}

const kTag = (k: TopK) => (k === 'dense' || k === 0 ? 'dense' : `k${k}`)

/** File/step names carrying every setting a step depends on, and nothing more. */
export function sweepNaming(pt: SweepPoint): SystemNaming {
  const f = `f${pt.dataFraction}`
  return {
    teacher: (name, seed) => `${name}.${f}.s${seed}`,
    soft: (teacher, seed) => `${teacher}.${f}.s${seed}.${kTag(pt.topK)}`,
    student: (name, seed) =>
      name === 'lstm-baseline'
        ? `${name}.${f}.s${seed}.${pt.optimiser}`
        : `${name}.${f}.s${seed}.${kTag(pt.topK)}.T${pt.temperature}.${pt.optimiser}`,
  }
}

/** The recipe configuration of one point: the axes written over the base configuration. */
export function pointConfig(base: SweepConfig, pt: SweepPoint): SystemsConfig {
  const c = structuredClone(base)
  const rates = { ...OPTIMISER_RATES, ...(base.optimiserRates ?? {}) }[pt.optimiser]
  const rate = (lr: number) => (rates.lr !== undefined ? rates.lr : lr * (rates.lrScale ?? 1))
  c.teacher.dataFraction = pt.dataFraction
  c.soft.topK = pt.topK === 'dense' ? 0 : pt.topK
  const axis = (s: Partial<StudentConfig>, full: boolean) => {
    if (full || s.temperature !== undefined) s.temperature = pt.temperature
    if (full || s.optimizer !== undefined) s.optimizer = pt.optimiser
    if (full || s.dataFraction !== undefined) s.dataFraction = pt.dataFraction
    if (full || s.lr !== undefined) s.lr = rate(s.lr ?? base.student.lr)
    if (full || s.ktLr !== undefined) s.ktLr = rate(s.ktLr ?? base.student.ktLr)
  }
  axis(c.student, true)
  for (const s of Object.values(c.students)) axis(s, false)
  // the baseline ignores the temperature, but it is on its command line: pin it, so one baseline serves every temperature
  c.students['lstm-baseline'] = {
    ...(c.students['lstm-baseline'] ?? {}),
    temperature: base.students['lstm-baseline']?.temperature ?? base.student.temperature,
  }
  return c
}

/**
 * Plan a sweep: the recipe's data side once, then every point's systems, merging steps that the
 * points share (same name ⇒ the same command, checked), and the sweep report at the end.
 */
export function planSweep(
  prep: Prepared,
  base: SweepConfig,
  axes: SweepAxes,
  systems: readonly string[],
  out: string,
): SweepPlan {
  for (const s of systems) {
    if (!withTeachers([s]).includes(s))
      throw new KtpError(
        'usage',
        `--systems: unknown system '${s}' (known: ${withTeachers(STUDENTS.map((s) => s.name)).join(', ')})`,
      )
  }
  const steps: Step[] = [...prep.steps]
  const byName = new Map<string, Step>(steps.map((s) => [s.name, s]))
  const add = (s: Step) => {
    const prev = byName.get(s.name)
    if (!prev) {
      byName.set(s.name, s)
      steps.push(s)
      return
    }
    const same = (x: Step) =>
      canonicalJson({ cmd: x.cmd ?? null, config: x.config ?? null, inputs: x.inputs, outputs: x.outputs })
    if (same(prev) !== same(s))
      throw new KtpError(
        'sweep',
        `sweep planner: step '${s.name}' is planned twice with different commands (a naming bug)`,
      )
  }
  const points = sweepPoints(axes)
  const runs: SweepRun[] = []
  const seen = new Set<string>()
  const trained = withTeachers(systems)
  for (const pt of points) {
    for (const r of addSystems(add, prep.data, pointConfig(base, pt), trained, sweepNaming(pt))) {
      runs.push({ ...r, point: pt })
      seen.add(r.eval)
    }
  }
  steps.push({
    name: 'sweep-report',
    config: { axes, systems: trained, seeds: base.seeds, v: 3 },
    inputs: [...seen, ...prep.reportInputs],
    outputs: [prep.data.p('sweep.json'), prep.data.p('report.md')],
    fn: async () => writeSweepReport({ task: prep.task, metric: prep.metric, out, axes, runs, config: base }),
  })
  return { recipe: { name: 'sweep', steps }, runs, points }
}
