import { join, resolve } from 'node:path'
import type { Step } from './runner.js'
import { STUDENT_EXTRA_FLAGS, STUDENT_FLAGS, type StudentConfig, type TeacherConfig } from './systems-config.js'

/**
 * The plumbing of the recipes: one builder per `ktp` command a recipe runs, each returning the
 * step with its command line, inputs and outputs, so that a recipe is a list of one-line calls.
 * A step's key hashes its command and inputs, so these builders fix every argument and its
 * order: reordering one would make every existing run of the recipe stale.
 */

export const SPLITS = ['train', 'dev', 'test'] as const
export type Split = (typeof SPLITS)[number]
export type PerSplit = Record<Split, string>

/** The data-side files both recipes name the same way, under the output directory. */
export interface DataFiles {
  /** A path under the output directory. */
  p: (...xs: string[]) => string
  /** Kaldi data dirs. */
  data: PerSplit
  /** Features before CMVN. */
  raw: PerSplit
  /** Features after CMVN: what every model trains and is scored on. */
  feats: PerSplit
  /** CMVN statistics of the training speakers. */
  cmvn: string
}

export function perSplit(f: (s: Split) => string): PerSplit {
  return { train: f('train'), dev: f('dev'), test: f('test') }
}

export function dataFiles(out: string): DataFiles {
  const root = resolve(out)
  const p = (...xs: string[]) => join(root, ...xs)
  return {
    p,
    data: perSplit((s) => p('data', s)),
    raw: perSplit((s) => p('feats', `${s}.raw.arrow`)),
    feats: perSplit((s) => p('feats', `${s}.arrow`)),
    cmvn: p('cmvn.json'),
  }
}

/** Kaldi fbank features of a data dir (no dither, so that a rerun gives the same bits). */
export function features(f: DataFiles, s: Split, numMelBins: number): Step {
  return {
    name: `features-${s}`,
    cmd: ['features', f.data[s], '--dither', '0', '--num-mel-bins', String(numMelBins), '-o', f.raw[s], '--quiet'],
    inputs: [f.data[s]],
    outputs: [f.raw[s]],
    shardable: true,
  }
}

/**
 * CMVN of every split. `global`: the training features' one mean and variance, applied to every
 * split. `speaker`: each speaker's own statistics (Kaldi's recipes' default), from the split's own
 * utt2spk, so a test speaker is normalised by its own data and never by the training speakers'.
 */
export type CmvnMode = 'global' | 'speaker'

export function cmvnSteps(f: DataFiles, mode: CmvnMode = 'global'): Step[] {
  if (mode === 'global') return [cmvnStats(f), ...SPLITS.map((s) => cmvnApply(f, s))]
  return SPLITS.flatMap((s) => {
    const stats = f.p(`cmvn.${s}.json`)
    return [
      {
        name: `cmvn-stats-${s}`,
        cmd: ['cmvn', 'compute', f.raw[s], '--mode', 'speaker', '--data', f.data[s], '--norm-vars', '-o', stats],
        inputs: [f.raw[s], f.data[s]],
        outputs: [stats],
      },
      cmvnApply(f, s, stats),
    ]
  })
}

/** Global mean and variance of the training features. */
export function cmvnStats(f: DataFiles): Step {
  return {
    name: 'cmvn-stats',
    cmd: ['cmvn', 'compute', f.raw.train, '--norm-vars', '-o', f.cmvn],
    inputs: [f.raw.train],
    outputs: [f.cmvn],
  }
}

export function cmvnApply(f: DataFiles, s: Split, stats = f.cmvn): Step {
  return {
    name: `cmvn-${s}`,
    cmd: ['cmvn', 'apply', '--stats', stats, f.raw[s], '-o', f.feats[s], '--quiet'],
    inputs: [stats, f.raw[s]],
    outputs: [f.feats[s]],
  }
}

/** Frame labels from a data dir's phone alignment (phones.ctm), folded by `map`. */
export function frameLabels(name: string, o: { data: string; feats: string; map: string; out: string }): Step {
  return {
    name,
    cmd: ['labels', '--ctm', join(o.data, 'phones.ctm'), '--feats', o.feats, '--map', o.map, '-o', o.out, '--quiet'],
    inputs: [o.data, o.feats],
    outputs: [o.out],
    allowPartial: true,
  }
}

/** An HMM (`args`: its units and topology) and its pdf inventory (hmm.json → hmm.pdfs.txt). */
export function hmmInit(args: string[], out: string): Step {
  return {
    name: 'hmm-init',
    cmd: ['hmm-init', ...args, '-o', out],
    inputs: [],
    outputs: [out, out.replace(/\.json$/, '.pdfs.txt')],
  }
}

/** Priors and transitions of an HMM re-estimated from frame labels. */
export function hmmUpdate(name: string, o: { hmm: string; labels: string; out: string }): Step {
  return {
    name,
    cmd: ['hmm-update', '--hmm', o.hmm, o.labels, '-o', o.out],
    inputs: [o.hmm, o.labels],
    outputs: [o.out],
  }
}

/** Flat-start alignment of a data dir's transcripts, each word inside its known span (words.ctm). */
export function flatStart(name: string, o: { hmm: string; data: string; feats: string; out: string }): Step {
  return {
    name,
    cmd: [
      'align',
      ...['--hmm', o.hmm, '--text', join(o.data, 'text'), '--flat-start', '--feats', o.feats],
      ...['--ctm', join(o.data, 'words.ctm'), '-o', o.out, '--quiet'],
    ],
    inputs: [o.hmm, o.data, o.feats],
    outputs: [o.out],
    allowPartial: true,
  }
}

/**
 * Viterbi realignment of a data dir's transcripts on a model's posteriors: frame labels `out`
 * (.arrow) and their word CTM beside them (.ctm). Acoustic scale 1: transitions are not scaled
 * here, so scaling the acoustics by Kaldi's 0.1 let the flat transition costs and the priors drown
 * the silence posteriors (measured: 18% of digit boundaries within 30 ms at 0.1, 96% at 1.0).
 */
export function realign(name: string, o: { hmm: string; data: string; scores: string; out: string }): Step {
  const ctm = o.out.replace(/\.arrow$/, '.ctm')
  return {
    name,
    cmd: [
      'align',
      ...['--hmm', o.hmm, '--text', join(o.data, 'text'), o.scores, '--acoustic-scale', '1'],
      ...['-o', o.out, '--ctm-out', ctm, '--quiet'],
    ],
    inputs: [o.hmm, o.data, o.scores],
    outputs: [o.out, ctm],
    allowPartial: true,
  }
}

/** A model's log-posteriors over features: `topK` 0 and f32 for decoding, else soft targets. */
export function infer(
  name: string,
  o: { model: string; feats: string; out: string; topK?: number; dtype?: 'f16' | 'f32' },
): Step {
  return {
    name,
    cmd: [
      'infer',
      ...['--model', o.model, o.feats, '--top-k', String(o.topK ?? 0), '--dtype', o.dtype ?? 'f32'],
      ...['-o', o.out, '--quiet'],
    ],
    inputs: [o.model, o.feats],
    outputs: [o.out],
    shardable: true,
  }
}

/** What every training command reads: training and held-out (dev) features and frame labels. */
export interface TrainingData {
  feats: PerSplit
  labels: PerSplit
  /** Kaldi utt2spk of the training data: a data fraction below 1 is then balanced by speaker. */
  utt2spk?: string
}

function trainingArgs(d: TrainingData, seed: number): string[] {
  return [
    ...['--feats', d.feats.train, '--labels', d.labels.train],
    ...['--heldout-feats', d.feats.dev, '--heldout-labels', d.labels.dev, '--seed', String(seed)],
  ]
}

/**
 * A training subset (a fraction below 1, balanced by speaker when the speaker map is known): its
 * flags and its extra input. A fraction of 1 adds neither, so full-data commands stay as they were.
 */
function subset(d: TrainingData, fraction: number | undefined) {
  const spk = fraction !== undefined && fraction < 1 && d.utt2spk ? [d.utt2spk] : []
  return {
    fraction: fraction !== undefined && fraction < 1 ? ['--data-fraction', String(fraction)] : [],
    utt2spk: spk.flatMap((u) => ['--utt2spk', u]),
    inputs: spk,
  }
}

const dnnModel = (hidden: number[], activation: string) => JSON.stringify({ type: 'dnn', hidden, activation })

/**
 * A DNN on spliced frames: a teacher (with `pretrain`, its batch size and data fraction), or the
 * recipe's alignment DNN (without: one epoch at least, the command's other defaults).
 */
export function trainDnn(
  name: string,
  o: {
    data: TrainingData
    seed: number
    net: Pick<TeacherConfig, 'hidden' | 'lr' | 'maxEpochs'> & { activation?: TeacherConfig['activation'] }
    context: number
    teacher?: { pretrain: 'none' | 'rbm'; config: TeacherConfig }
    out: string
  },
): Step {
  const t = o.teacher?.config
  const part = subset(o.data, t?.dataFraction)
  return {
    name,
    cmd: [
      'train-teacher',
      ...trainingArgs(o.data, o.seed),
      ...['--model', dnnModel(o.net.hidden, o.net.activation ?? 'sigmoid'), '--context', String(o.context)],
      ...(o.teacher ? ['--pretrain', o.teacher.pretrain, '--rbm-epochs', String(o.teacher.config.rbmEpochs)] : []),
      ...['--lr', String(o.net.lr), '--max-epochs', String(o.net.maxEpochs)],
      ...['--min-epochs', String(t ? t.minEpochs : 1)],
      ...(t ? ['--batch-size', String(t.batchSize), ...part.fraction, ...part.utt2spk] : []),
      ...['-o', o.out],
    ],
    inputs: [o.data.feats.train, o.data.feats.dev, o.data.labels.train, o.data.labels.dev, ...part.inputs],
    outputs: [o.out],
    // utterances without labels (alignment failures) are skipped and counted: exit 1, model written
    allowPartial: true,
    // without it, a rerun refuses the checkpoint an interrupted run left
    resumeFlag: '--resume',
  }
}

/** kebab-case CLI flags from a flat options object (booleans as --x / --no-x). */
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

/** A student's training options as flags: the ones every recipe sets (fixed order), then any extra. */
function studentFlags(s: StudentConfig): string[] {
  const pick = (keys: readonly (keyof StudentConfig)[]) => Object.fromEntries(keys.map((k) => [k, s[k]]))
  return [...flags(pick(STUDENT_FLAGS)), ...flags(pick(STUDENT_EXTRA_FLAGS))]
}

/** An LSTM student: `mode` baseline (no soft targets), or kt / regularise / layerwise-kt from `soft`. */
export function trainStudent(
  name: string,
  o: { data: TrainingData; seed: number; mode: string; soft: string | null; student: StudentConfig; out: string },
): Step {
  const { cells, layers, dataFraction } = o.student
  const part = subset(o.data, dataFraction)
  return {
    name,
    cmd: [
      'train-student',
      ...trainingArgs(o.data, o.seed),
      ...['--mode', o.mode, ...(o.soft ? ['--soft', o.soft] : [])],
      ...['--model', JSON.stringify(o.student.model ?? { type: 'lstm', cells, layers })],
      ...studentFlags(o.student),
      // always given, even at 1 (students always have been)
      ...['--data-fraction', String(dataFraction), ...part.utt2spk],
      ...['-o', o.out],
    ],
    inputs: [
      ...[o.data.feats.train, o.data.feats.dev, o.data.labels.train, o.data.labels.dev, ...part.inputs],
      ...(o.soft ? [o.soft] : []),
    ],
    outputs: [o.out],
    allowPartial: true,
    resumeFlag: '--resume',
  }
}
