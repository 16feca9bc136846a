import { join, resolve } from 'node:path'
import { boundaryAccuracy } from './boundaries.js'
import type { FsddConfig } from './fsdd-config.js'
import type { Recipe, Step } from './runner.js'
import {
  type DataFiles,
  SPLITS,
  cmvnSteps,
  dataFiles,
  features,
  flatStart,
  hmmInit,
  hmmUpdate,
  infer,
  perSplit,
  realign,
  trainDnn,
} from './steps.js'
import { type Prepared, systemsRecipe } from './systems.js'

/**
 * The `fsdd` recipe (docs/ARCHITECTURE.md §6, issue 7): connected digits from FSDD, split by speaker; flat
 * start inside the known digit spans, a first DNN, Viterbi realignment; then, for every seed, the
 * systems the paper's claims compare — DNN teachers with and without RBM pre-training, and LSTM
 * students: baseline, kt from each teacher, regularise, layerwise-kt — each decoded with its
 * acoustic scale and insertion penalty tuned on the dev speaker and scored on the test speaker.
 * Every step is a `ktp` command, so the log of a run is a script a user can replay by hand.
 */
export function fsddRecipe(corpus: string, out: string, cfg: FsddConfig): Recipe {
  // data prep … realignment (below), then teachers, soft targets, students, decode, score, report
  return systemsRecipe('fsdd', fsddPrep(corpus, out, cfg), resolve(out), cfg)
}

/** The recipe's files beyond the shared data layout: alignments, posteriors, HMMs. */
function fsddFiles(out: string) {
  const f = dataFiles(out)
  const { p } = f
  return {
    ...f,
    hmm0: p('hmm0.json'),
    hmm0p: p('hmm0p.json'),
    hmm1: p('hmm1.json'),
    ali0: perSplit((s) => p('ali0', `${s}.arrow`)),
    alignDnn: p('exp', 'align-dnn'),
    alignPost: perSplit((s) => p('post', `align-${s}.arrow`)),
    ali1: perSplit((s) => p('ali1', `${s}.arrow`)),
    /** Realigned word CTMs, beside the labels (see realign). */
    ali1Ctm: perSplit((s) => p('ali1', `${s}.ctm`)),
    boundaries: p('boundaries.json'),
  }
}

/**
 * The data side, shared by `ktp run fsdd` and `ktp sweep fsdd`: its steps (one per line, in the
 * order a Kaldi run.sh would list them) and what the systems train and score on.
 */
export function fsddPrep(corpus: string, out: string, cfg: FsddConfig): Prepared {
  const f = fsddFiles(out)
  const steps: Step[] = []
  const add = (...s: Step[]) => steps.push(...s)

  add(connectDigits(corpus, f, cfg)) // data: digit strings, train/dev/test by speaker
  for (const s of SPLITS) add(features(f, s, cfg.features.numMelBins))
  add(...cmvnSteps(f, cfg.features.cmvn))
  add(hmmInit(digitHmm(cfg), f.hmm0))
  for (const s of SPLITS)
    add(flatStart(`flat-start-${s}`, { hmm: f.hmm0, data: f.data[s], feats: f.feats[s], out: f.ali0[s] }))
  add(hmmUpdate('hmm-priors0', { hmm: f.hmm0, labels: f.ali0.train, out: f.hmm0p }))
  add(alignmentDnn(f, cfg))
  for (const s of SPLITS) {
    add(infer(`align-post-${s}`, { model: f.alignDnn, feats: f.feats[s], out: f.alignPost[s] }))
    add(realign(`realign-${s}`, { hmm: f.hmm0p, data: f.data[s], scores: f.alignPost[s], out: f.ali1[s] }))
  }
  add(boundaries(f)) // how close realignment gets to the true digit boundaries
  add(hmmUpdate('hmm-priors1', { hmm: f.hmm0, labels: f.ali1.train, out: f.hmm1 }))

  return {
    steps,
    task: 'fsdd connected digits',
    metric: 'WER',
    reportInputs: [f.boundaries],
    web: { cmvn: f.cmvn, rawFeatures: f.raw.train },
    data: {
      p: f.p,
      feats: f.feats,
      labels: f.ali1,
      hmm: f.hmm1,
      lmText: join(f.data.train, 'text'),
      devText: join(f.data.dev, 'text'),
      testText: join(f.data.test, 'text'),
      evalInputs: [],
      utt2spk: join(f.data.train, 'utt2spk'),
    },
  }
}

/** Connected-digit utterances with their true word boundaries, split by speaker. */
function connectDigits(corpus: string, f: DataFiles, cfg: FsddConfig): Step {
  const c = cfg.connect
  return {
    name: 'connect-digits',
    cmd: [
      ...['connect-digits', resolve(corpus), '-o', f.p('data'), '--seed', String(cfg.dataSeed)],
      ...[
        '--max-per-speaker',
        String(c.maxPerSpeaker),
        '--test-speakers',
        c.testSpeakers,
        '--dev-speakers',
        c.devSpeakers,
      ],
    ],
    inputs: [resolve(corpus)],
    outputs: SPLITS.map((s) => f.data[s]),
  }
}

/** Whole-word digit units and a silence unit. */
function digitHmm(cfg: FsddConfig): string[] {
  const { states, silenceStates } = cfg.hmm
  return [
    '--whole-word-digits',
    '--states',
    String(states),
    '--silence',
    'sil',
    '--silence-states',
    String(silenceStates),
  ]
}

/** The first DNN, on the flat-start alignment, whose posteriors realign it (seed 1, the teachers' context). */
function alignmentDnn(f: ReturnType<typeof fsddFiles>, cfg: FsddConfig): Step {
  const data = { feats: f.feats, labels: f.ali0 }
  return trainDnn('align-dnn', { data, seed: 1, net: cfg.align, context: cfg.teacher.context, out: f.alignDnn })
}

function boundaries(f: ReturnType<typeof fsddFiles>): Step {
  const truth = join(f.data.train, 'words.ctm')
  return {
    name: 'boundaries',
    config: { v: 1 },
    inputs: [f.ali1Ctm.train, truth],
    outputs: [f.boundaries],
    fn: async () => {
      boundaryAccuracy(truth, f.ali1Ctm.train, 0.03, f.boundaries)
    },
  }
}
