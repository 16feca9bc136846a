/**
 * Bigram language models over a closed vocabulary, stored as a dense log-probability matrix
 * (vocabularies here are 11 digits or ~48 phones, so dense is smaller and faster than a map).
 * Rows are histories: `<s>` then the words; columns are predictions: the words then `</s>`.
 *
 * Smoothing (so no transition of the loop graph is impossible):
 * - add-k:        P(w|h) = (c(h,w) + k) / (c(h) + k·|V+1|)
 * - Witten–Bell:  P(w|h) = (c(h,w) + T(h)·Pu(w)) / (c(h) + T(h)), T(h) = number of distinct
 *   words seen after h; Pu is the add-one unigram (c(w)+1)/(N+|V+1|). A history never seen
 *   falls back to Pu. Witten–Bell gives unseen successors of a well-observed history little
 *   mass, add-k gives every cell the same k.
 * |V+1| counts the words plus `</s>`.
 */

export const BOS = '<s>'
export const EOS = '</s>'

export class LmError extends Error {
  override name = 'LmError'
}

export interface BigramLm {
  readonly vocab: readonly string[]
  /** (vocab.length + 1) × (vocab.length + 1): row 0 = <s>, row 1+i = vocab[i]; col i = vocab[i], col V = </s> */
  readonly logp: Float64Array
  readonly index: ReadonlyMap<string, number>
}

export type Smoothing = { kind: 'add-k'; k: number } | { kind: 'witten-bell' }

function indexOf(vocab: readonly string[]): Map<string, number> {
  const m = new Map<string, number>()
  vocab.forEach((w, i) => {
    if (w === BOS || w === EOS) throw new LmError(`"${w}" is reserved and cannot be a vocabulary word`)
    if (m.has(w)) throw new LmError(`word "${w}" listed twice in the vocabulary`)
    m.set(w, i)
  })
  return m
}

/** log P(next | prev); prev may be `<s>`, next may be `</s>`. */
export function lmLogProb(lm: BigramLm, prev: string, next: string): number {
  const V = lm.vocab.length
  const r = prev === BOS ? 0 : 1 + (lm.index.get(prev) ?? -2)
  const c = next === EOS ? V : (lm.index.get(next) ?? -1)
  if (r < 0 || c < 0) throw new LmError(`unknown word in P(${next} | ${prev})`)
  return lm.logp[r * (V + 1) + c]!
}

/** Row/column helpers for graph builders (word index -1 = <s> as history, V = </s>). */
export const lmRow = (prevWord: number): number => (prevWord < 0 ? 0 : 1 + prevWord)
export const lmCell = (lm: BigramLm, prevWord: number, next: number): number =>
  lm.logp[lmRow(prevWord) * (lm.vocab.length + 1) + next]!

/** Every word and `</s>` equally likely after every history. */
export function uniformLm(vocab: readonly string[]): BigramLm {
  const index = indexOf(vocab)
  const n = vocab.length + 1
  return { vocab: [...vocab], index, logp: new Float64Array(n * n).fill(-Math.log(n)) }
}

/** A unigram model (same row for every history), estimated with add-k. */
export function estimateUnigram(vocab: readonly string[], sentences: Iterable<readonly string[]>, k = 1): BigramLm {
  const index = indexOf(vocab)
  const n = vocab.length + 1
  const c = new Float64Array(n)
  let total = 0
  for (const s of sentences) {
    for (const w of s) {
      const i = index.get(w)
      if (i === undefined) throw new LmError(`word "${w}" in training text is not in the vocabulary`)
      c[i]!++
      total++
    }
    c[n - 1]!++
    total++
  }
  const logp = new Float64Array(n * n)
  for (let r = 0; r < n; r++) for (let j = 0; j < n; j++) logp[r * n + j] = Math.log((c[j]! + k) / (total + k * n))
  return { vocab: [...vocab], index, logp }
}

/** Estimates a bigram LM from training sentences (each wrapped in <s> … </s>). */
export function estimateBigram(
  vocab: readonly string[],
  sentences: Iterable<readonly string[]>,
  smoothing: Smoothing = { kind: 'witten-bell' },
): BigramLm {
  const index = indexOf(vocab)
  const n = vocab.length + 1 // rows: <s> + words; cols: words + </s>
  const big = new Float64Array(n * n)
  const uni = new Float64Array(n)
  let N = 0
  for (const s of sentences) {
    let row = 0
    for (const w of s) {
      const i = index.get(w)
      if (i === undefined) throw new LmError(`word "${w}" in training text is not in the vocabulary`)
      big[row * n + i]!++
      uni[i]!++
      N++
      row = 1 + i
    }
    big[row * n + (n - 1)]!++
    uni[n - 1]!++
    N++
  }
  const logp = new Float64Array(n * n)
  if (smoothing.kind === 'add-k') {
    if (!(smoothing.k > 0)) throw new LmError(`expected add-k smoothing k > 0, got ${smoothing.k}`)
    for (let r = 0; r < n; r++) {
      let ch = 0
      for (let j = 0; j < n; j++) ch += big[r * n + j]!
      for (let j = 0; j < n; j++) logp[r * n + j] = Math.log((big[r * n + j]! + smoothing.k) / (ch + smoothing.k * n))
    }
  } else {
    for (let r = 0; r < n; r++) {
      let ch = 0,
        types = 0
      for (let j = 0; j < n; j++) {
        ch += big[r * n + j]!
        if (big[r * n + j]! > 0) types++
      }
      for (let j = 0; j < n; j++) {
        const pu = (uni[j]! + 1) / (N + n)
        logp[r * n + j] = Math.log(ch === 0 ? pu : (big[r * n + j]! + types * pu) / (ch + types))
      }
    }
  }
  return { vocab: [...vocab], index, logp }
}

/**
 * The LM as JSON (`ktp.lm@1`, what `ktp export --web` writes for the page): the vocabulary and
 * the (V+1)×(V+1) log-probability matrix row by row. Doubles round-trip exactly through JSON, so
 * the page searches with the very numbers `ktp decode` estimated.
 */
export function lmToJson(lm: BigramLm): { format: 'ktp.lm'; version: 1; vocab: string[]; logp: number[] } {
  return { format: 'ktp.lm', version: 1, vocab: [...lm.vocab], logp: Array.from(lm.logp) }
}

export function lmFromJson(obj: unknown, source: string): BigramLm {
  const o = obj as { format?: unknown; version?: unknown; vocab?: unknown; logp?: unknown }
  if (o?.format !== 'ktp.lm' || o.version !== 1) throw new LmError(`${source}: not a ktp.lm@1 file`)
  if (!Array.isArray(o.vocab) || !o.vocab.every((w) => typeof w === 'string'))
    throw new LmError(`${source}: "vocab" must be an array of words`)
  const n = o.vocab.length + 1
  if (!Array.isArray(o.logp) || o.logp.length !== n * n || !o.logp.every((v) => typeof v === 'number' && v <= 0))
    throw new LmError(`${source}: "logp" must hold ${n}×${n} log-probabilities (≤ 0)`)
  return { vocab: [...o.vocab], index: indexOf(o.vocab), logp: Float64Array.from(o.logp) }
}
