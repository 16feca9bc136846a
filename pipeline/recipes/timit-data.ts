import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { formatCtm, parseCtm } from '../../stages/formats/ctm.js'
import { readDataDir, subsetDataDir, writeDataDir } from '../../stages/formats/datadir-io.js'
import { TIMIT_61_TO_48 } from '../../stages/scoring/timit-phones.js'
import { shardOf } from '../io/shard.js'

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
