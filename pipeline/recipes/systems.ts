import type { Recipe, Step } from './runner.js'
import { tuneAndEvaluate } from './evaluate.js'
import { writeReport } from './report.js'

/**
 * The systems every recipe compares, per seed (issue 7): DNN teachers with and without RBM
 * pre-training, their soft targets, LSTM students (baseline, kt from each teacher, regularise,
 * layerwise-kt), and for each system: dense log-posteriors of dev and test, decoding tuned on dev,
 * scored on test. A recipe supplies the data side (features, labels, HMM, references).
 */
export const SYSTEMS = [
  'dnn',
  'dnn-rbm',
  'lstm-baseline',
  'lstm-kt',
  'lstm-kt-rbm',
  'lstm-regularise',
  'lstm-layerwise-kt',
] as const

export interface StudentConfig {
  cells: number
  layers: number
  lr: number
  maxEpochs: number
  minEpochs: number
  ktLr: number
  ktMaxEpochs: number
  ktMinEpochs: number
  temperature: number
  alpha: number
  chunkLength: number
  chunksPerBatch: number
  layerEpochs: number
  optimizer: 'sgd' | 'momentum' | 'adam'
  dataFraction: number
}

export interface SystemsConfig {
  seeds: number[]
  teacher: {
    hidden: number[]
    activation: 'sigmoid' | 'tanh' | 'relu'
    context: number
    lr: number
    maxEpochs: number
    minEpochs: number
    rbmEpochs: number
    batchSize: number
    /** Train teachers on this fraction of the training utterances (sweeps; absent = all). */
    dataFraction?: number
  }
  soft: { topK: number; dtype: 'f16' | 'f32' }
  student: StudentConfig
  /** Per-system overrides of `student` (e.g. {"lstm-kt": {"temperature": 4}}). */
  students: Record<string, Partial<StudentConfig>>
  decode: { acousticScales: number[]; insertionPenalties: number[]; lm: 'bigram' | 'unigram' | 'uniform' }
}

export interface SystemsData {
  /** A path inside the recipe's output directory. */
  p: (...xs: string[]) => string
  feats: Record<'train' | 'dev' | 'test', string>
  labels: Record<'train' | 'dev' | 'test', string>
  hmm: string
  lmText: string
  devText: string
  testText: string
  /** Fold labels before scoring (TIMIT: 39 phones). */
  map?: 'timit39'
  /** Directories/files whose change must re-run evaluation (transcripts). */
  evalInputs: string[]
  /** Kaldi utt2spk of the training data: data fractions below 1 are then balanced by speaker. */
  utt2spk?: string
}

/**
 * How a system's files are named. The recipes name by system and seed (`dnn.s1`); a sweep names
 * by every setting a step depends on (`dnn.f0.25.s1`, `lstm-kt.f0.25.s1.k8.T2.sgd`), so two sweep
 * points that need the same teacher or soft targets name the same step and share it.
 */
export interface SystemNaming {
  teacher(name: 'dnn' | 'dnn-rbm', seed: number): string
  soft(teacher: 'dnn' | 'dnn-rbm', seed: number): string
  student(name: string, seed: number): string
}

export const RECIPE_NAMING: SystemNaming = {
  teacher: (name, seed) => `${name}.s${seed}`,
  soft: (teacher, seed) => `${teacher}.s${seed}`,
  student: (name, seed) => `${name}.s${seed}`,
}

/** Students in the order the recipes train them: [system, --mode, teacher]. */
export const STUDENTS: [string, string, 'dnn' | 'dnn-rbm' | null][] = [
  ['lstm-baseline', 'baseline', null],
  ['lstm-kt', 'kt', 'dnn'],
  ['lstm-kt-rbm', 'kt', 'dnn-rbm'],
  ['lstm-regularise', 'regularise', 'dnn'],
  ['lstm-layerwise-kt', 'layerwise-kt', 'dnn'],
]

/** The systems a set of systems needs trained (students need their teacher). */
export function withTeachers(systems: readonly string[]): string[] {
  const need = new Set(systems)
  for (const [name, , teacher] of STUDENTS) if (need.has(name) && teacher) need.add(teacher)
  return SYSTEMS.filter((s) => need.has(s))
}

/** One trained-and-evaluated system of one seed: where its model and evaluation are. */
export interface SystemRun {
  system: string
  seed: number
  /** The name of its files: exp/ID, eval/ID.json. */
  id: string
  eval: string
}

/** kebab-case CLI flags from a flat options object. */
export function flags(o: Record<string, unknown>): string[] {
  const out: string[] = []
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue
    const name = `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`
    if (typeof v === 'boolean') out.push(v ? name : `--no-${name.slice(2)}`)
    else out.push(name, typeof v === 'object' ? JSON.stringify(v) : String(v))
  }
  return out
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
  const runs: SystemRun[] = []
  const wanted = new Set(withTeachers(systems))
  // a fraction below 1 names its subset; flags are added only then, so recipe commands (and their stamps) stay as they were
  const spk = (f: number | undefined) => (f !== undefined && f < 1 && d.utt2spk ? [d.utt2spk] : [])
  const common = (seed: number) => [
    '--feats',
    d.feats.train,
    '--labels',
    d.labels.train,
    '--heldout-feats',
    d.feats.dev,
    '--heldout-labels',
    d.labels.dev,
    '--seed',
    String(seed),
  ]
  const trainInputs = (f: number | undefined) => [d.feats.train, d.feats.dev, d.labels.train, d.labels.dev, ...spk(f)]
  const dnnModel = JSON.stringify({ type: 'dnn', hidden: cfg.teacher.hidden, activation: cfg.teacher.activation })
  for (const seed of cfg.seeds) {
    const t = cfg.teacher
    for (const [name, pre] of [
      ['dnn', 'none'],
      ['dnn-rbm', 'rbm'],
    ] as const) {
      if (!wanted.has(name)) continue
      const id = naming.teacher(name, seed)
      const soft = naming.soft(name, seed)
      add({
        name: id,
        cmd: [
          'train-teacher',
          ...common(seed),
          '--model',
          dnnModel,
          '--context',
          String(t.context),
          '--pretrain',
          pre,
          '--rbm-epochs',
          String(t.rbmEpochs),
          '--lr',
          String(t.lr),
          '--max-epochs',
          String(t.maxEpochs),
          '--min-epochs',
          String(t.minEpochs),
          '--batch-size',
          String(t.batchSize),
          ...(t.dataFraction !== undefined && t.dataFraction < 1 ? ['--data-fraction', String(t.dataFraction)] : []),
          ...spk(t.dataFraction).flatMap((u) => ['--utt2spk', u]),
          '-o',
          p('exp', id),
        ],
        inputs: trainInputs(t.dataFraction),
        outputs: [p('exp', id)],
      })
      add({
        name: `soft-${soft}`,
        cmd: [
          'infer',
          '--model',
          p('exp', id),
          d.feats.train,
          '--top-k',
          String(cfg.soft.topK),
          '--dtype',
          cfg.soft.dtype,
          '-o',
          p('soft', `${soft}.arrow`),
          '--quiet',
        ],
        inputs: [p('exp', id), d.feats.train],
        outputs: [p('soft', `${soft}.arrow`)],
      })
      runs.push({ system: name, seed, id, eval: p('eval', `${id}.json`) })
    }
    for (const [name, mode, teacher] of STUDENTS) {
      if (!wanted.has(name)) continue
      const id = naming.student(name, seed)
      const { cells, layers, dataFraction, ...rest } = { ...cfg.student, ...(cfg.students[name] ?? {}) }
      const softFile = teacher ? p('soft', `${naming.soft(teacher, seed)}.arrow`) : null
      add({
        name: id,
        cmd: [
          'train-student',
          ...common(seed),
          '--mode',
          mode,
          ...(softFile ? ['--soft', softFile] : []),
          '--model',
          JSON.stringify({ type: 'lstm', cells, layers }),
          ...flags(rest),
          '--data-fraction',
          String(dataFraction),
          ...spk(dataFraction).flatMap((u) => ['--utt2spk', u]),
          '-o',
          p('exp', id),
        ],
        inputs: [...trainInputs(dataFraction), ...(softFile ? [softFile] : [])],
        outputs: [p('exp', id)],
      })
      runs.push({ system: name, seed, id, eval: p('eval', `${id}.json`) })
    }
  }
  for (const r of runs) {
    const model = p('exp', r.id)
    for (const s of ['dev', 'test'] as const) {
      add({
        name: `post-${r.id}-${s}`,
        cmd: [
          'infer',
          '--model',
          model,
          d.feats[s],
          '--top-k',
          '0',
          '--dtype',
          'f32',
          '-o',
          p('post', `${r.id}-${s}.arrow`),
          '--quiet',
        ],
        inputs: [model, d.feats[s]],
        outputs: [p('post', `${r.id}-${s}.arrow`)],
      })
    }
    const out = p('eval', r.id)
    add({
      name: `eval-${r.id}`,
      config: { decode: cfg.decode, map: d.map ?? null },
      inputs: [
        d.hmm,
        p('post', `${r.id}-dev.arrow`),
        p('post', `${r.id}-test.arrow`),
        d.labels.test,
        d.lmText,
        d.devText,
        d.testText,
        ...d.evalInputs,
      ],
      outputs: [`${out}.json`],
      fn: async () => {
        await tuneAndEvaluate({
          hmm: d.hmm,
          lmText: d.lmText,
          devScores: p('post', `${r.id}-dev.arrow`),
          devText: d.devText,
          testScores: p('post', `${r.id}-test.arrow`),
          testText: d.testText,
          testLabels: d.labels.test,
          acousticScales: cfg.decode.acousticScales,
          insertionPenalties: cfg.decode.insertionPenalties,
          lm: cfg.decode.lm,
          map: d.map,
          out,
        })
      },
    })
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
}

/** `ktp run`: the data side, every system for every seed, and the report. */
export function systemsRecipe(name: string, prep: Prepared, out: string, cfg: SystemsConfig): Recipe {
  const steps = [...prep.steps]
  const runs = addSystems((s) => steps.push(s), prep.data, cfg)
  steps.push({
    name: 'report',
    config: { systems: SYSTEMS, seeds: cfg.seeds, v: 1 },
    inputs: [...runs.map((r) => r.eval), ...prep.reportInputs],
    outputs: [prep.data.p('results.json'), prep.data.p('report.md')],
    fn: async () =>
      writeReport({ task: prep.task, metric: prep.metric, out, seeds: cfg.seeds, systems: [...SYSTEMS], config: cfg }),
  })
  return { name, steps }
}
