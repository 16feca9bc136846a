import type { Step } from '../../pipeline/recipe.js'
import { tuneAndEvaluate } from './evaluate.js'

/**
 * The systems every recipe compares, per seed (issue 7): DNN teachers with and without RBM
 * pre-training, their soft targets, LSTM students (baseline, kt from each teacher, regularise,
 * layerwise-kt), and for each system: dense log-posteriors of dev and test, decoding tuned on dev,
 * scored on test. A recipe supplies the data side (features, labels, HMM, references).
 */
export const SYSTEMS = ['dnn', 'dnn-rbm', 'lstm-baseline', 'lstm-kt', 'lstm-kt-rbm', 'lstm-regularise', 'lstm-layerwise-kt'] as const

export interface StudentConfig {
  cells: number; layers: number; lr: number; maxEpochs: number; minEpochs: number; ktLr: number; ktMaxEpochs: number; ktMinEpochs: number
  temperature: number; alpha: number; chunkLength: number; chunksPerBatch: number; layerEpochs: number; optimizer: 'sgd' | 'momentum' | 'adam'
  dataFraction: number
}

export interface SystemsConfig {
  seeds: number[]
  teacher: { hidden: number[]; activation: 'sigmoid' | 'tanh' | 'relu'; context: number; lr: number; maxEpochs: number; minEpochs: number; rbmEpochs: number; batchSize: number }
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

/** Add the systems' steps; returns the evaluation JSON files (the report's inputs). */
export function addSystems(add: (s: Step) => void, d: SystemsData, cfg: SystemsConfig): string[] {
  const { p } = d
  const evals: string[] = []
  const common = (seed: number) => ['--feats', d.feats.train, '--labels', d.labels.train, '--heldout-feats', d.feats.dev, '--heldout-labels', d.labels.dev, '--seed', String(seed)]
  const trainInputs = [d.feats.train, d.feats.dev, d.labels.train, d.labels.dev]
  const dnnModel = JSON.stringify({ type: 'dnn', hidden: cfg.teacher.hidden, activation: cfg.teacher.activation })
  for (const seed of cfg.seeds) {
    const sx = `s${seed}`
    const t = cfg.teacher
    for (const [name, pre] of [['dnn', 'none'], ['dnn-rbm', 'rbm']] as const) {
      add({
        name: `${name}.${sx}`,
        cmd: ['train-teacher', ...common(seed), '--model', dnnModel, '--context', String(t.context), '--pretrain', pre, '--rbm-epochs', String(t.rbmEpochs),
          '--lr', String(t.lr), '--max-epochs', String(t.maxEpochs), '--min-epochs', String(t.minEpochs), '--batch-size', String(t.batchSize), '-o', p('exp', `${name}.${sx}`)],
        inputs: trainInputs, outputs: [p('exp', `${name}.${sx}`)],
      })
      add({
        name: `soft-${name}.${sx}`,
        cmd: ['infer', '--model', p('exp', `${name}.${sx}`), d.feats.train, '--top-k', String(cfg.soft.topK), '--dtype', cfg.soft.dtype, '-o', p('soft', `${name}.${sx}.arrow`), '--quiet'],
        inputs: [p('exp', `${name}.${sx}`), d.feats.train], outputs: [p('soft', `${name}.${sx}.arrow`)],
      })
    }
    const students: [string, string, string | null][] = [
      ['lstm-baseline', 'baseline', null], ['lstm-kt', 'kt', 'dnn'], ['lstm-kt-rbm', 'kt', 'dnn-rbm'],
      ['lstm-regularise', 'regularise', 'dnn'], ['lstm-layerwise-kt', 'layerwise-kt', 'dnn'],
    ]
    for (const [name, mode, teacher] of students) {
      const { cells, layers, ...rest } = { ...cfg.student, ...(cfg.students[name] ?? {}) }
      add({
        name: `${name}.${sx}`,
        cmd: ['train-student', ...common(seed), '--mode', mode, ...(teacher ? ['--soft', p('soft', `${teacher}.${sx}.arrow`)] : []),
          '--model', JSON.stringify({ type: 'lstm', cells, layers }), ...flags(rest), '-o', p('exp', `${name}.${sx}`)],
        inputs: [...trainInputs, ...(teacher ? [p('soft', `${teacher}.${sx}.arrow`)] : [])], outputs: [p('exp', `${name}.${sx}`)],
      })
    }
    for (const sys of SYSTEMS) {
      const model = p('exp', `${sys}.${sx}`)
      for (const s of ['dev', 'test'] as const) {
        add({ name: `post-${sys}.${sx}-${s}`, cmd: ['infer', '--model', model, d.feats[s], '--top-k', '0', '--dtype', 'f32', '-o', p('post', `${sys}.${sx}-${s}.arrow`), '--quiet'], inputs: [model, d.feats[s]], outputs: [p('post', `${sys}.${sx}-${s}.arrow`)] })
      }
      const out = p('eval', `${sys}.${sx}`)
      evals.push(`${out}.json`)
      add({
        name: `eval-${sys}.${sx}`, config: { decode: cfg.decode, map: d.map ?? null },
        inputs: [d.hmm, p('post', `${sys}.${sx}-dev.arrow`), p('post', `${sys}.${sx}-test.arrow`), d.labels.test, d.lmText, d.devText, d.testText, ...d.evalInputs],
        outputs: [`${out}.json`],
        fn: async () => {
          await tuneAndEvaluate({
            hmm: d.hmm, lmText: d.lmText, devScores: p('post', `${sys}.${sx}-dev.arrow`), devText: d.devText,
            testScores: p('post', `${sys}.${sx}-test.arrow`), testText: d.testText, testLabels: d.labels.test,
            acousticScales: cfg.decode.acousticScales, insertionPenalties: cfg.decode.insertionPenalties, lm: cfg.decode.lm, map: d.map, out,
          })
        },
      })
    }
  }
  return evals
}
