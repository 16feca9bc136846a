import { join, resolve } from 'node:path'
import { writeFileAtomic } from '../io/atomic-file.js'
import type { Recipe, Step } from './runner.js'
import { SPLITS, cmvnSteps, dataFiles, features, frameLabels, hmmInit, hmmUpdate, perSplit } from './steps.js'
import { type Prepared, systemsRecipe } from './systems.js'
import type { TimitConfig } from './timit-config.js'
import { phoneText, splitDev } from './timit-data.js'

/**
 * The `timit` recipe (docs/ARCHITECTURE.md §6): TIMIT phone recognition from any TIMIT-layout corpus (LDC or
 * flat, either case). Frame targets come straight from the `.phn` alignments (48 training phones,
 * label of the phone under the frame centre), decoding is a phone loop with a bigram phone LM
 * estimated on the training transcripts, and scoring folds to 39 phones (PER). The systems are
 * those of every recipe (systems.ts). Corpora without a TRAIN/TEST division are split by speaker
 * (`--test-speakers`, `--test-fraction`), or by sentence (`--test-utts`); dev speakers are then
 * carved from the training speakers and leave training.
 */
export function timitRecipe(corpus: string, out: string, cfg: TimitConfig): Recipe {
  // data prep … labels (below), then teachers, soft targets, students, decode, score, report
  return systemsRecipe('timit', timitPrep(corpus, out, cfg), resolve(out), cfg)
}

/** The recipe's files beyond the shared data layout. */
function timitFiles(out: string) {
  const f = dataFiles(out)
  const { p } = f
  return {
    ...f,
    /** The corpus' own train/test division, before dev speakers leave training. */
    corpus: { train: p('corpus', 'train'), test: p('corpus', 'test') },
    devSplit: p('dev-split.json'),
    lm: { train48: p('lm', 'train.48.txt'), dev61: p('lm', 'dev.61.txt'), test61: p('lm', 'test.61.txt') },
    labels: perSplit((s) => p('labels', `${s}.arrow`)),
    hmm0: p('hmm0.json'),
    hmm1: p('hmm1.json'),
  }
}
type TimitFiles = ReturnType<typeof timitFiles>

/** The data side (prepare, dev split, features, labels, HMM), shared with `ktp sweep timit`. */
export function timitPrep(corpus: string, out: string, cfg: TimitConfig): Prepared {
  const f = timitFiles(out)
  const steps: Step[] = []
  const add = (...s: Step[]) => steps.push(...s)

  add(prepare(corpus, f, cfg.split)) // Kaldi data dirs: the corpus' train/test division
  add(devSplit(f, cfg.split.devFraction)) // dev speakers carved from training, and out of it
  add(phoneTexts(f)) // phone transcripts: LM text (48 phones), dev and test references (61)
  for (const s of SPLITS) add(features(f, s, cfg.features.numMelBins))
  add(...cmvnSteps(f, cfg.features.cmvn))
  for (const s of SPLITS) {
    add(frameLabels(`labels-${s}`, { data: f.data[s], feats: f.feats[s], map: 'timit48', out: f.labels[s] }))
  }
  add(hmmInit(['--phones-from', 'timit48', '--states', '1'], f.hmm0)) // a 48-phone loop
  add(hmmUpdate('hmm-priors', { hmm: f.hmm0, labels: f.labels.train, out: f.hmm1 }))

  return {
    steps,
    task: 'timit phone recognition',
    metric: 'PER',
    reportInputs: [],
    data: {
      p: f.p,
      feats: f.feats,
      labels: f.labels,
      hmm: f.hmm1,
      lmText: f.lm.train48,
      devText: f.lm.dev61,
      testText: f.lm.test61,
      map: 'timit39',
      evalInputs: [],
      utt2spk: join(f.data.train, 'utt2spk'),
    },
  }
}

function prepare(corpus: string, f: TimitFiles, split: TimitConfig['split']): Step {
  return {
    name: 'prepare',
    cmd: [
      ...['prepare', 'timit', resolve(corpus), '-o', f.p('corpus')],
      ...(split.testSpeakers ? ['--test-speakers', split.testSpeakers] : []),
      ...(split.testFraction !== undefined ? ['--test-fraction', String(split.testFraction)] : []),
      ...(split.testUtts ? ['--test-utts', split.testUtts] : []),
    ],
    inputs: [resolve(corpus)],
    outputs: [f.corpus.train, f.corpus.test],
  }
}

function devSplit(f: TimitFiles, devFraction: number): Step {
  return {
    name: 'dev-split',
    // v2: dev speakers leave training (issue 15)
    config: { devFraction, v: 2 },
    inputs: [f.corpus.train, f.corpus.test],
    outputs: [f.data.train, f.data.dev, f.data.test, f.devSplit],
    fn: async () => {
      const r = splitDev(f.corpus, f.data, devFraction)
      writeFileAtomic(f.devSplit, `${JSON.stringify(r)}\n`)
    },
  }
}

function phoneTexts(f: TimitFiles): Step {
  return {
    name: 'phone-texts',
    config: { v: 1 },
    inputs: [f.data.train, f.data.dev, f.data.test],
    outputs: [f.lm.train48, f.lm.dev61, f.lm.test61],
    fn: async () => {
      writeFileAtomic(f.lm.train48, phoneText(join(f.data.train, 'phones.ctm'), true))
      writeFileAtomic(f.lm.dev61, phoneText(join(f.data.dev, 'phones.ctm'), false))
      writeFileAtomic(f.lm.test61, phoneText(join(f.data.test, 'phones.ctm'), false))
    },
  }
}
