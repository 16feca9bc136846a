import { KtpError } from '../../schemas/errors.js'

/** `--shard i/N`: the i-th (1-based, as Kaldi's JOB=1:N) of N disjoint, deterministic subsets. */
export interface Shard {
  index: number
  count: number
}

export function parseShard(s: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(s.trim())
  const index = m ? Number(m[1]) : NaN
  const count = m ? Number(m[2]) : NaN
  if (!m || count < 1 || index < 1 || index > count) {
    throw new KtpError('usage', `expected --shard i/N with 1 ≤ i ≤ N, got '${s}'`)
  }
  return { index, count }
}

/**
 * FNV-1a over the id's UTF-8 bytes: stable across machines, Node versions and input order, so
 * the same utterance lands in the same shard whichever job reads it.
 */
export function shardOf(utt: string, count: number): number {
  let h = 0x811c9dc5
  const bytes = Buffer.from(utt, 'utf8')
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return (h % count) + 1
}

export function inShard(utt: string, shard: Shard | null): boolean {
  return shard === null || shardOf(utt, shard.count) === shard.index
}
