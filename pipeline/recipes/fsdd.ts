import { join, resolve } from 'node:path'
import type { Recipe, Step } from './runner.js'
import { SYSTEMS, type SystemsConfig, type Prepared, systemsRecipe } from './systems.js'
import { boundaryAccuracy } from './boundaries.js'

/**
 * The `fsdd` recipe (DESIGN.md §6, issue 7): connected digits from FSDD, split by speaker; flat
 * start inside the known digit spans, a first DNN, Viterbi realignment; then, for every seed, the
 * systems the paper's claims compare — DNN teachers with and without RBM pre-training, and LSTM
 * students: baseline, kt from each teacher, regularise, layerwise-kt — each decoded with its
 * acoustic scale and insertion penalty tuned on the dev speaker and scored on the test speaker.
 * Every step is a `ktp` command, so the log of a run is a script a user can replay by hand.
 */
export interface FsddConfig extends SystemsConfig {
  /** Seed of the connected-digit data (the split and strings), not of training. */
  dataSeed: number
  connect: { maxPerSpeaker: number; testSpeakers: string; devSpeakers: string }
  features: { numMelBins: number }
  hmm: { states: number; silenceStates: number }
  align: { hidden: number[]; maxEpochs: number; lr: number }
}

export const FSDD_FULL: FsddConfig = {
  dataSeed: 1,
  seeds: [1, 2, 3],
  connect: { maxPerSpeaker: 0, testSpeakers: 'george', devSpeakers: 'lucas' },
  features: { numMelBins: 23 },
  hmm: { states: 5, silenceStates: 3 },
  align: { hidden: [256, 256], maxEpochs: 6, lr: 0.5 },
  teacher: {
    hidden: [256, 256, 256],
    activation: 'sigmoid',
    context: 5,
    lr: 1,
    maxEpochs: 12,
    minEpochs: 4,
    rbmEpochs: 1,
    batchSize: 256,
  },
  soft: { topK: 8, dtype: 'f16' },
  student: {
    cells: 128,
    layers: 2,
    lr: 0.5,
    maxEpochs: 12,
    minEpochs: 4,
    ktLr: 0.5,
    ktMaxEpochs: 8,
    ktMinEpochs: 3,
    temperature: 2,
    alpha: 0.5,
    chunkLength: 20,
    chunksPerBatch: 16,
    layerEpochs: 2,
    optimizer: 'sgd',
    dataFraction: 1,
  },
  students: {},
  decode: { acousticScales: [0.1, 0.2, 0.5, 1], insertionPenalties: [0, -2, -5], lm: 'unigram' },
}

/** Small enough for the demo (minutes on 2 cores), large enough that the systems differ. */
export const FSDD_QUICK: FsddConfig = {
  ...FSDD_FULL,
  seeds: [1],
  connect: { ...FSDD_FULL.connect, maxPerSpeaker: 100 },
  hmm: { states: 3, silenceStates: 3 },
  align: { hidden: [128], maxEpochs: 3, lr: 0.5 },
  teacher: { ...FSDD_FULL.teacher, hidden: [128, 128], maxEpochs: 5, minEpochs: 3 },
  student: {
    ...FSDD_FULL.student,
    cells: 32,
    maxEpochs: 4,
    minEpochs: 3,
    ktMaxEpochs: 2,
    ktMinEpochs: 2,
    layerEpochs: 1,
  },
  decode: { acousticScales: [0.3, 1], insertionPenalties: [0, -3], lm: 'unigram' },
}

export { SYSTEMS }

/**
 * The data side of the recipe — connected digits, features, flat start, realignment — shared by
 * `ktp run fsdd` and `ktp sweep fsdd`: its steps, and what the systems train and score on.
 */
export function fsddPrep(data: string, outDir: string, cfg: FsddConfig): Prepared {
  const D = resolve(outDir)
  const p = (...xs: string[]) => join(D, ...xs)
  const steps: Step[] = []
  const add = (s: Step) => steps.push(s)
  const splits = ['train', 'dev', 'test'] as const
  const dataDir = (s: string) => p('data', s)

  add({
    name: 'connect-digits',
    cmd: [
      'connect-digits',
      resolve(data),
      '-o',
      p('data'),
      '--seed',
      String(cfg.dataSeed),
      '--max-per-speaker',
      String(cfg.connect.maxPerSpeaker),
      '--test-speakers',
      cfg.connect.testSpeakers,
      '--dev-speakers',
      cfg.connect.devSpeakers,
    ],
    inputs: [resolve(data)],
    outputs: splits.map(dataDir),
  })
  for (const s of splits) {
    add({
      name: `features-${s}`,
      cmd: [
        'features',
        dataDir(s),
        '--dither',
        '0',
        '--num-mel-bins',
        String(cfg.features.numMelBins),
        '-o',
        p('feats', `${s}.raw.arrow`),
        '--quiet',
      ],
      inputs: [dataDir(s)],
      outputs: [p('feats', `${s}.raw.arrow`)],
    })
  }
  add({
    name: 'cmvn-stats',
    cmd: ['cmvn', 'compute', p('feats', 'train.raw.arrow'), '--norm-vars', '-o', p('cmvn.json')],
    inputs: [p('feats', 'train.raw.arrow')],
    outputs: [p('cmvn.json')],
  })
  for (const s of splits) {
    add({
      name: `cmvn-${s}`,
      cmd: [
        'cmvn',
        'apply',
        '--stats',
        p('cmvn.json'),
        p('feats', `${s}.raw.arrow`),
        '-o',
        p('feats', `${s}.arrow`),
        '--quiet',
      ],
      inputs: [p('cmvn.json'), p('feats', `${s}.raw.arrow`)],
      outputs: [p('feats', `${s}.arrow`)],
    })
  }
  add({
    name: 'hmm-init',
    cmd: [
      'hmm-init',
      '--whole-word-digits',
      '--states',
      String(cfg.hmm.states),
      '--silence',
      'sil',
      '--silence-states',
      String(cfg.hmm.silenceStates),
      '-o',
      p('hmm0.json'),
    ],
    inputs: [],
    outputs: [p('hmm0.json'), p('hmm0.pdfs.txt')],
  })
  for (const s of splits) {
    add({
      name: `flat-start-${s}`,
      cmd: [
        'align',
        '--hmm',
        p('hmm0.json'),
        '--text',
        join(dataDir(s), 'text'),
        '--flat-start',
        '--feats',
        p('feats', `${s}.arrow`),
        '--ctm',
        join(dataDir(s), 'words.ctm'),
        '-o',
        p('ali0', `${s}.arrow`),
        '--quiet',
      ],
      inputs: [p('hmm0.json'), dataDir(s), p('feats', `${s}.arrow`)],
      outputs: [p('ali0', `${s}.arrow`)],
      allowPartial: true,
    })
  }
  add({
    name: 'hmm-priors0',
    cmd: ['hmm-update', '--hmm', p('hmm0.json'), p('ali0', 'train.arrow'), '-o', p('hmm0p.json')],
    inputs: [p('hmm0.json'), p('ali0', 'train.arrow')],
    outputs: [p('hmm0p.json')],
  })
  const dnnModel = (hidden: number[], act = 'sigmoid') => JSON.stringify({ type: 'dnn', hidden, activation: act })
  const common = (ali: string, seed: number) => [
    '--feats',
    p('feats', 'train.arrow'),
    '--labels',
    p(ali, 'train.arrow'),
    '--heldout-feats',
    p('feats', 'dev.arrow'),
    '--heldout-labels',
    p(ali, 'dev.arrow'),
    '--seed',
    String(seed),
  ]
  add({
    name: 'align-dnn',
    cmd: [
      'train-teacher',
      ...common('ali0', 1),
      '--model',
      dnnModel(cfg.align.hidden),
      '--context',
      String(cfg.teacher.context),
      '--lr',
      String(cfg.align.lr),
      '--max-epochs',
      String(cfg.align.maxEpochs),
      '--min-epochs',
      '1',
      '-o',
      p('exp', 'align-dnn'),
    ],
    inputs: [p('feats', 'train.arrow'), p('feats', 'dev.arrow'), p('ali0', 'train.arrow'), p('ali0', 'dev.arrow')],
    outputs: [p('exp', 'align-dnn')],
  })
  for (const s of splits) {
    add({
      name: `align-post-${s}`,
      cmd: [
        'infer',
        '--model',
        p('exp', 'align-dnn'),
        p('feats', `${s}.arrow`),
        '--top-k',
        '0',
        '--dtype',
        'f32',
        '-o',
        p('post', `align-${s}.arrow`),
        '--quiet',
      ],
      inputs: [p('exp', 'align-dnn'), p('feats', `${s}.arrow`)],
      outputs: [p('post', `align-${s}.arrow`)],
    })
    add({
      name: `realign-${s}`,
      // acoustic scale 1: transitions are not scaled here, so scaling the acoustics by Kaldi's 0.1
      // let the flat transition costs and the priors drown the silence posteriors (measured: 18% of
      // digit boundaries within 30 ms at 0.1, 96% at 1.0)
      cmd: [
        'align',
        '--hmm',
        p('hmm0p.json'),
        '--text',
        join(dataDir(s), 'text'),
        p('post', `align-${s}.arrow`),
        '--acoustic-scale',
        '1',
        '-o',
        p('ali1', `${s}.arrow`),
        '--ctm-out',
        p('ali1', `${s}.ctm`),
        '--quiet',
      ],
      inputs: [p('hmm0p.json'), dataDir(s), p('post', `align-${s}.arrow`)],
      outputs: [p('ali1', `${s}.arrow`), p('ali1', `${s}.ctm`)],
      allowPartial: true,
    })
  }
  add({
    name: 'boundaries',
    config: { v: 1 },
    inputs: [p('ali1', 'train.ctm'), join(dataDir('train'), 'words.ctm')],
    outputs: [p('boundaries.json')],
    fn: async () => {
      boundaryAccuracy(join(dataDir('train'), 'words.ctm'), p('ali1', 'train.ctm'), 0.03, p('boundaries.json'))
    },
  })
  add({
    name: 'hmm-priors1',
    cmd: ['hmm-update', '--hmm', p('hmm0.json'), p('ali1', 'train.arrow'), '-o', p('hmm1.json')],
    inputs: [p('hmm0.json'), p('ali1', 'train.arrow')],
    outputs: [p('hmm1.json')],
  })

  return {
    steps,
    task: 'fsdd connected digits',
    metric: 'WER',
    reportInputs: [p('boundaries.json')],
    data: {
      p,
      feats: { train: p('feats', 'train.arrow'), dev: p('feats', 'dev.arrow'), test: p('feats', 'test.arrow') },
      labels: { train: p('ali1', 'train.arrow'), dev: p('ali1', 'dev.arrow'), test: p('ali1', 'test.arrow') },
      hmm: p('hmm1.json'),
      lmText: join(dataDir('train'), 'text'),
      devText: join(dataDir('dev'), 'text'),
      testText: join(dataDir('test'), 'text'),
      evalInputs: [],
      utt2spk: join(dataDir('train'), 'utt2spk'),
    },
  }
}

export function fsddRecipe(data: string, outDir: string, cfg: FsddConfig): Recipe {
  return systemsRecipe('fsdd', fsddPrep(data, outDir, cfg), resolve(outDir), cfg)
}
