import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Recipe, Step } from './runner.js'
import { writeFileAtomic } from '../io/atomic-file.js'
import { parseCtm } from '../../stages/formats/ctm.js'
import { readDataDir, subsetDataDir, writeDataDir } from '../../stages/formats/datadir-io.js'
import { formatCtm } from '../../stages/formats/ctm.js'
import { TIMIT_61_TO_48 } from '../../stages/scoring/timit-phones.js'
import { shardOf } from '../io/shard.js'
import { type Prepared, type SystemsConfig, systemsRecipe } from './systems.js'
import { FSDD_FULL, FSDD_QUICK } from './fsdd.js'

/**
 * The `timit` recipe (DESIGN.md §6): TIMIT phone recognition from any TIMIT-layout corpus (LDC or
 * flat, either case). Frame targets come straight from the `.phn` alignments (48 training phones,
 * label of the phone under the frame centre), decoding is a phone loop with a bigram phone LM
 * estimated on the training transcripts, and scoring folds to 39 phones (PER). The systems are
 * those of every recipe (stages/recipes/systems.ts). Corpora without a TRAIN/TEST division are
 * split by speaker (`--test-speakers`, `--test-fraction`), or by sentence (`--test-utts`).
 */
export interface TimitConfig extends SystemsConfig {
  split: { testSpeakers?: string; testFraction?: number; testUtts?: string; devFraction: number }
  features: { numMelBins: number }
}

const decode = { acousticScales: [0.2, 0.5, 1], insertionPenalties: [0, -2], lm: 'bigram' as const }
export const TIMIT_FULL: TimitConfig = {
  ...FSDD_FULL,
  decode,
  split: { devFraction: 0.1 },
  features: { numMelBins: 40 },
}
export const TIMIT_QUICK: TimitConfig = {
  ...FSDD_QUICK,
  decode: { ...decode, acousticScales: [0.5] },
  split: { devFraction: 0.1 },
  features: { numMelBins: 40 },
}

/** Phone sequences of a data dir's phones.ctm as Kaldi text, optionally mapped 61 → 48 (q dropped). */
export function phoneText(ctmPath: string, map48: boolean): string {
  const ctm = parseCtm(readFileSync(ctmPath, 'utf8'), ctmPath)
  const lines: string[] = []
  for (const [utt, segs] of [...ctm].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const phones = segs
      .map((s) => (map48 ? (TIMIT_61_TO_48[s.label] ?? null) : s.label))
      .filter((x): x is string => !!x)
    lines.push(`${utt} ${phones.join(' ')}\n`)
  }
  return lines.join('')
}

/**
 * A dev set for tuning, carved from training speakers by a stable hash (never the test
 * speakers). A corpus with a single training speaker has nothing to spare: dev is then the
 * training set itself, and the report says so.
 */
export function makeDev(
  trainDir: string,
  devDir: string,
  fraction: number,
): { devSpeakers: string[]; sameAsTrain: boolean } {
  const { data } = readDataDir(trainDir)
  const speakers = [...new Set(data.utt2spk.values())].sort()
  let dev = new Set(speakers.filter((s) => shardOf(s, 1000) <= Math.round(fraction * 1000)))
  if (speakers.length > 1 && dev.size === 0) dev = new Set([speakers[0]])
  const sameAsTrain = speakers.length <= 1 || dev.size === speakers.length
  const keep = sameAsTrain ? () => true : (u: string) => dev.has(data.utt2spk.get(u)!)
  const extra: Record<string, string> = {}
  const ctm = join(trainDir, 'phones.ctm')
  if (existsSync(ctm)) {
    const all = parseCtm(readFileSync(ctm, 'utf8'), ctm)
    extra['phones.ctm'] = formatCtm(new Map([...all].filter(([u]) => keep(u))))
  }
  writeDataDir(devDir, subsetDataDir(data, keep), extra)
  return { devSpeakers: sameAsTrain ? speakers : [...dev], sameAsTrain }
}

/** The data side of the recipe (prepare, dev split, features, labels, HMM), shared with `ktp sweep timit`. */
export function timitPrep(data: string, outDir: string, cfg: TimitConfig): Prepared {
  const D = resolve(outDir)
  const p = (...xs: string[]) => join(D, ...xs)
  const steps: Step[] = []
  const add = (s: Step) => steps.push(s)
  const dir = (s: string) => p('data', s)
  const split = [
    ...(cfg.split.testSpeakers ? ['--test-speakers', cfg.split.testSpeakers] : []),
    ...(cfg.split.testFraction !== undefined ? ['--test-fraction', String(cfg.split.testFraction)] : []),
    ...(cfg.split.testUtts ? ['--test-utts', cfg.split.testUtts] : []),
  ]
  add({
    name: 'prepare',
    cmd: ['prepare', 'timit', resolve(data), '-o', p('data'), ...split],
    inputs: [resolve(data)],
    outputs: [dir('train'), dir('test')],
  })
  add({
    name: 'dev-split',
    config: { devFraction: cfg.split.devFraction },
    inputs: [dir('train')],
    outputs: [dir('dev')],
    fn: async () => {
      const r = makeDev(dir('train'), dir('dev'), cfg.split.devFraction)
      writeFileAtomic(p('dev-split.json'), `${JSON.stringify(r)}\n`)
    },
  })
  add({
    name: 'phone-texts',
    config: { v: 1 },
    inputs: [dir('train'), dir('dev'), dir('test')],
    outputs: [p('lm', 'train.48.txt'), p('lm', 'dev.61.txt'), p('lm', 'test.61.txt')],
    fn: async () => {
      writeFileAtomic(p('lm', 'train.48.txt'), phoneText(join(dir('train'), 'phones.ctm'), true))
      for (const s of ['dev', 'test'])
        writeFileAtomic(p('lm', `${s}.61.txt`), phoneText(join(dir(s), 'phones.ctm'), false))
    },
  })
  const splits = ['train', 'dev', 'test'] as const
  for (const s of splits) {
    add({
      name: `features-${s}`,
      cmd: [
        'features',
        dir(s),
        '--dither',
        '0',
        '--num-mel-bins',
        String(cfg.features.numMelBins),
        '-o',
        p('feats', `${s}.raw.arrow`),
        '--quiet',
      ],
      inputs: [dir(s)],
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
    add({
      name: `labels-${s}`,
      cmd: [
        'labels',
        '--ctm',
        join(dir(s), 'phones.ctm'),
        '--feats',
        p('feats', `${s}.arrow`),
        '--map',
        'timit48',
        '-o',
        p('labels', `${s}.arrow`),
        '--quiet',
      ],
      inputs: [dir(s), p('feats', `${s}.arrow`)],
      outputs: [p('labels', `${s}.arrow`)],
      allowPartial: true,
    })
  }
  add({
    name: 'hmm-init',
    cmd: ['hmm-init', '--phones-from', 'timit48', '--states', '1', '-o', p('hmm0.json')],
    inputs: [],
    outputs: [p('hmm0.json')],
  })
  add({
    name: 'hmm-priors',
    cmd: ['hmm-update', '--hmm', p('hmm0.json'), p('labels', 'train.arrow'), '-o', p('hmm1.json')],
    inputs: [p('hmm0.json'), p('labels', 'train.arrow')],
    outputs: [p('hmm1.json')],
  })
  return {
    steps,
    task: 'timit phone recognition',
    metric: 'PER',
    reportInputs: [],
    data: {
      p,
      feats: { train: p('feats', 'train.arrow'), dev: p('feats', 'dev.arrow'), test: p('feats', 'test.arrow') },
      labels: { train: p('labels', 'train.arrow'), dev: p('labels', 'dev.arrow'), test: p('labels', 'test.arrow') },
      hmm: p('hmm1.json'),
      lmText: p('lm', 'train.48.txt'),
      devText: p('lm', 'dev.61.txt'),
      testText: p('lm', 'test.61.txt'),
      map: 'timit39',
      evalInputs: [],
      utt2spk: join(dir('train'), 'utt2spk'),
    },
  }
}

export function timitRecipe(data: string, outDir: string, cfg: TimitConfig): Recipe {
  return systemsRecipe('timit', timitPrep(data, outDir, cfg), resolve(outDir), cfg)
}
