import { join } from 'node:path'
import { type Fold, foldOut, foldsRecipe } from './folds.js'
import type { Recipe, Step } from './runner.js'
import { tuneAndEvaluate } from './evaluate.js'
import { writeReport } from './report.js'
import { infer, trainDnn, trainStudent } from './steps.js'
import type { STUDENT_NAMES, SystemsConfig } from './systems-config.js'
import type { SystemRun, SystemsData } from './system-types.js'
import { type WebInputs, webSite } from './web.js'

/**
 * The systems every recipe compares, per seed (issue 7): DNN teachers with and without RBM
 * pre-training, their soft targets, LSTM students (baseline, kt from each teacher, regularise,
 * layerwise-kt), and for each system: dense log-posteriors of dev and test, decoding tuned on dev,
 * scored on test. A recipe supplies the data side (features, labels, HMM, references).
 */
export type { SystemRun, SystemsData } from './system-types.js'

export const SYSTEMS = [
  'dnn',
  'dnn-rbm',
  'lstm-baseline',
  'lstm-kt',
  'lstm-kt-rbm',
  'lstm-regularise',
  'lstm-layerwise-kt',
] as const

export type TeacherName = 'dnn' | 'dnn-rbm'
export type StudentName = (typeof STUDENT_NAMES)[number]

/** Teachers in the order the recipes train them, with their pre-training. */
export const TEACHERS: { name: TeacherName; pretrain: 'none' | 'rbm' }[] = [
  { name: 'dnn', pretrain: 'none' },
  { name: 'dnn-rbm', pretrain: 'rbm' },
]

/** Students in the order the recipes train them: their `--mode`, and the teacher whose soft targets they read. */
export const STUDENTS: { name: StudentName; mode: string; teacher: TeacherName | null }[] = [
  { name: 'lstm-baseline', mode: 'baseline', teacher: null },
  { name: 'lstm-kt', mode: 'kt', teacher: 'dnn' },
  { name: 'lstm-kt-rbm', mode: 'kt', teacher: 'dnn-rbm' },
  { name: 'lstm-regularise', mode: 'regularise', teacher: 'dnn' },
  { name: 'lstm-layerwise-kt', mode: 'layerwise-kt', teacher: 'dnn' },
]

/**
 * How a system's files are named. The recipes name by system and seed (`dnn.s1`); a sweep names
 * by every setting a step depends on (`dnn.f0.25.s1`, `lstm-kt.f0.25.s1.k8.T2.sgd`), so two sweep
 * points that need the same teacher or soft targets name the same step and share it.
 */
export interface SystemNaming {
  teacher(name: TeacherName, seed: number): string
  soft(teacher: TeacherName, seed: number): string
  student(name: string, seed: number): string
}

export const RECIPE_NAMING: SystemNaming = {
  teacher: (name, seed) => `${name}.s${seed}`,
  soft: (teacher, seed) => `${teacher}.s${seed}`,
  student: (name, seed) => `${name}.s${seed}`,
}

/** The systems a set of systems needs trained (students need their teacher). */
export function withTeachers(systems: readonly string[]): string[] {
  const need = new Set(systems)
  for (const s of STUDENTS) if (need.has(s.name) && s.teacher) need.add(s.teacher)
  return SYSTEMS.filter((s) => need.has(s))
}

/** Decode dev over the grid of acoustic scales and insertion penalties, keep the best, score test. */
function evaluation(d: SystemsData, cfg: SystemsConfig, r: SystemRun): Step {
  const { p } = d
  const scores = { dev: p('post', `${r.id}-dev.arrow`), test: p('post', `${r.id}-test.arrow`) }
  const out = p('eval', r.id)
  return {
    name: `eval-${r.id}`,
    config: { decode: cfg.decode, map: d.map ?? null },
    inputs: [d.hmm, scores.dev, scores.test, d.labels.test, d.lmText, d.devText, d.testText, ...d.evalInputs],
    outputs: [`${out}.json`],
    fn: async () => {
      await tuneAndEvaluate({
        hmm: d.hmm,
        lmText: d.lmText,
        devScores: scores.dev,
        devText: d.devText,
        testScores: scores.test,
        testText: d.testText,
        testLabels: d.labels.test,
        acousticScales: cfg.decode.acousticScales,
        insertionPenalties: cfg.decode.insertionPenalties,
        lm: cfg.decode.lm,
        map: d.map,
        out,
      })
    },
  }
}

/**
 * Add the systems' steps; returns where each system's evaluation lands (the report's inputs).
 * `systems` limits what is trained (teachers that students need are added); `naming` names the
 * files (recipes: by system and seed; sweeps: by every setting, so shared steps coincide).
 */
export function addSystems(
  add: (s: Step) => void,
  d: SystemsData,
  cfg: SystemsConfig,
  systems: readonly string[] = SYSTEMS,
  naming: SystemNaming = RECIPE_NAMING,
): SystemRun[] {
  const { p } = d
  const wanted = new Set(withTeachers(systems))
  const runs: SystemRun[] = []
  const run = (system: string, seed: number, id: string) =>
    runs.push({ system, seed, id, eval: p('eval', `${id}.json`) })
  const softFile = (teacher: TeacherName, seed: number) => p('soft', `${naming.soft(teacher, seed)}.arrow`)
  for (const seed of cfg.seeds) {
    // teachers, and their soft targets on the training data
    for (const { name, pretrain } of TEACHERS.filter((t) => wanted.has(t.name))) {
      const id = naming.teacher(name, seed)
      const teacher = { pretrain, config: cfg.teacher }
      add(trainDnn(id, { data: d, seed, net: cfg.teacher, context: cfg.teacher.context, teacher, out: p('exp', id) }))
      add(
        infer(`soft-${naming.soft(name, seed)}`, {
          model: p('exp', id),
          feats: d.feats.train,
          ...cfg.soft,
          out: softFile(name, seed),
        }),
      )
      run(name, seed, id)
    }
    // students, each with its own overrides of the student settings
    for (const { name, mode, teacher } of STUDENTS.filter((s) => wanted.has(s.name))) {
      const id = naming.student(name, seed)
      const student = { ...cfg.student, ...(cfg.students[name] ?? {}) }
      const soft = teacher ? softFile(teacher, seed) : null
      add(trainStudent(id, { data: d, seed, mode, soft, student, out: p('exp', id) }))
      run(name, seed, id)
    }
  }
  // decode: dense log-posteriors of dev and test; score: tuned on dev, scored on test
  for (const r of runs) {
    for (const s of ['dev', 'test'] as const)
      add(
        infer(`post-${r.id}-${s}`, { model: p('exp', r.id), feats: d.feats[s], out: p('post', `${r.id}-${s}.arrow`) }),
      )
    add(evaluation(d, cfg, r))
  }
  return runs
}

/** A recipe's data side: its steps, and the files the systems train and score on. */
export interface Prepared {
  steps: Step[]
  data: SystemsData
  task: string
  metric: 'WER' | 'PER'
  /** Files the report reads besides the evaluations (e.g. boundaries.json). */
  reportInputs: string[]
  /** Write OUT/web/, the best student as a static site for the browser (web.ts), from these. */
  web?: WebInputs
}

/** results.json and report.md over every system and seed. */
function report(prep: Prepared, runs: SystemRun[], out: string, cfg: SystemsConfig): Step {
  return {
    name: 'report',
    config: { systems: SYSTEMS, seeds: cfg.seeds, v: 2 }, // v2: paired intervals, test-set size (issues 15, 17)
    inputs: [...runs.map((r) => r.eval), ...prep.reportInputs],
    outputs: [prep.data.p('results.json'), prep.data.p('report.md')],
    fn: async () =>
      writeReport({ task: prep.task, metric: prep.metric, out, seeds: cfg.seeds, systems: [...SYSTEMS], config: cfg }),
  }
}

/**
 * `ktp run`: the recipe's data side, then for every seed the teachers, their soft targets and the
 * students, then decoding and scoring of every system, then the report.
 */
export function systemsRecipe(name: string, prep: Prepared, out: string, cfg: SystemsConfig): Recipe {
  const steps = [...prep.steps]
  const runs = addSystems((s) => steps.push(s), prep.data, cfg)
  steps.push(report(prep, runs, out, cfg))
  if (prep.web) steps.push(webSite(prep.data, prep.web, cfg, runs))
  return { name, steps }
}

/**
 * `ktp run --folds K`: every fold a whole recipe under OUT/fold-x/ (its steps named `fold-x/…`, so
 * a rerun, or more folds or seeds, runs only what is new), then one report pooled over folds × seeds.
 */
export function foldedSystemsRecipe(
  name: string,
  folds: { fold: Fold; prep: Prepared; config: SystemsConfig }[],
  out: string,
): Recipe {
  const perFold = folds.map((f) => {
    const dir = foldOut(out, f.fold)
    const steps = [...f.prep.steps]
    const runs = addSystems((s) => steps.push(s), f.prep.data, f.config)
    steps.push(report(f.prep, runs, dir, f.config))
    return { fold: f.fold, recipe: { name, steps }, runs, dir }
  })
  const first = folds[0]
  const cfg = first.config
  const pooled: Step = {
    name: 'report',
    config: { systems: SYSTEMS, seeds: cfg.seeds, folds: folds.map((f) => f.fold), v: 2 },
    inputs: perFold.flatMap((f) => f.runs.map((r) => r.eval)),
    outputs: [join(out, 'results.json'), join(out, 'report.md')],
    fn: async () =>
      writeReport({
        task: first.prep.task,
        metric: first.prep.metric,
        out,
        seeds: cfg.seeds,
        systems: [...SYSTEMS],
        config: cfg,
        folds: perFold.map((f) => ({ name: f.fold.name, dir: f.dir })),
      }),
  }
  return foldsRecipe(
    name,
    perFold.map((f) => ({ fold: f.fold, recipe: f.recipe })),
    [pooled],
  )
}
