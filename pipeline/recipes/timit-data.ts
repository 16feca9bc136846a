import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { formatCtm, parseCtm } from '../../stages/formats/ctm.js'
import { readDataDir, subsetDataDir, writeDataDir } from '../../stages/formats/datadir-io.js'
import { TIMIT_61_TO_48 } from '../../stages/scoring/timit-phones.js'
import { shardOf } from '../io/shard.js'
import type { PerSplit } from './steps.js'

/** The timit recipe's own data steps: the dev split, and phone transcripts for the LM and scoring. */

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
 * Dev speakers carved from the training speakers by a stable hash of their ids: about `fraction`
 * of them, at least one, and never all of them (training keeps at least one speaker). With a
 * single training speaker there is none to spare: the result is empty.
 */
export function chooseDevSpeakers(speakers: string[], fraction: number): string[] {
  const sorted = [...new Set(speakers)].sort()
  if (sorted.length < 2) return []
  const dev = sorted.filter((s) => shardOf(s, 1000) <= Math.round(fraction * 1000))
  return dev.length === 0 || dev.length === sorted.length ? [(dev.length ? dev : sorted)[0]] : dev
}

export interface DevSplit {
  devSpeakers: string[]
  trainSpeakers: string[]
  /** A single training speaker: dev is the training set itself (no held-out speaker exists). */
  sameAsTrain: boolean
}

/** Copy the part of a data dir that `keep` selects, with its CTM files (phones.ctm, words.ctm). */
function writeSubset(from: string, to: string, keep: (utt: string) => boolean): void {
  const { data } = readDataDir(from)
  const extra: Record<string, string> = {}
  for (const name of readdirSync(from).filter((n) => n.endsWith('.ctm'))) {
    const all = parseCtm(readFileSync(join(from, name), 'utf8'), join(from, name))
    extra[name] = formatCtm(new Map([...all].filter(([u]) => keep(u))))
  }
  writeDataDir(to, subsetDataDir(data, keep), extra)
}

/**
 * The three sets the systems use, from the corpus' train/test division: dev speakers move out of
 * training (issue 15: dev ⊂ train let newbob and decoder tuning see training data), test is the
 * corpus' test set as it is. With a single training speaker, dev is the training set itself.
 */
export function splitDev(corpus: { train: string; test: string }, out: PerSplit, fraction: number): DevSplit {
  const { data } = readDataDir(corpus.train)
  const speakers = [...new Set(data.utt2spk.values())].sort()
  const dev = new Set(chooseDevSpeakers(speakers, fraction))
  const sameAsTrain = dev.size === 0
  const isDev = (u: string) => sameAsTrain || dev.has(data.utt2spk.get(u)!)
  writeSubset(corpus.train, out.train, (u) => sameAsTrain || !isDev(u))
  writeSubset(corpus.train, out.dev, isDev)
  writeSubset(corpus.test, out.test, () => true)
  return {
    devSpeakers: sameAsTrain ? speakers : [...dev],
    trainSpeakers: speakers.filter((s) => sameAsTrain || !dev.has(s)),
    sameAsTrain,
  }
}
