/**
 * Scoring a set of hypotheses against references the way sclite does in `trn` mode:
 * every hypothesis utterance is scored (in hypothesis-file order) against the reference with the
 * same id; references without a hypothesis are ignored; a hypothesis without a reference is an
 * error. Speakers are reported in order of first appearance in the hypotheses, as sclite does.
 */
import { alignWords, SCLITE_COSTS, type AlignedPair, type EditCosts, type EditCounts } from './align.js'
import { applyLabelMap, type LabelMap } from './label-map.js'
import type { TrnEntry } from './trn.js'

export class ScoringError extends Error {
  override name = 'ScoringError'
}

export interface UtteranceScore extends EditCounts {
  readonly id: string
  readonly speaker: string
  /** the (mapped) token sequences that were aligned */
  readonly ref: readonly string[]
  readonly hyp: readonly string[]
  readonly pairs: readonly AlignedPair[]
}

/** Counts and sclite-style percentages for one speaker or for the whole set. */
export interface ScoreSummary extends EditCounts {
  readonly speaker: string
  /** # Snt */
  readonly sentences: number
  /** # Wrd: reference tokens */
  readonly words: number
  /** Sub + Del + Ins */
  readonly errors: number
  /** sentences with at least one error */
  readonly sentenceErrors: number
  /** unrounded percentages (denominator 0 gives 0, as sclite's pct()) */
  readonly pct: {
    readonly corr: number
    readonly sub: number
    readonly del: number
    readonly ins: number
    readonly err: number
    readonly sentErr: number
  }
}

export interface ScoreResult {
  readonly utterances: readonly UtteranceScore[]
  readonly speakers: readonly ScoreSummary[]
  readonly overall: ScoreSummary
}

export interface ScoreOptions {
  /** alignment weights; default sclite's 4/3/3 */
  readonly costs?: EditCosts
  /** applied to both sides before alignment (e.g. the TIMIT 39-class fold) */
  readonly map?: LabelMap
}

/** sclite's pct(): num/den*100 in double, 0 when den is 0. */
export function pct(num: number, den: number): number {
  return den === 0 ? 0 : (num / den) * 100
}

/** Builds a summary from summed counts. */
export function summarize(speaker: string, utts: readonly UtteranceScore[]): ScoreSummary {
  let corr = 0,
    sub = 0,
    del = 0,
    ins = 0,
    sentenceErrors = 0
  for (const u of utts) {
    corr += u.corr
    sub += u.sub
    del += u.del
    ins += u.ins
    if (u.sub + u.del + u.ins > 0) sentenceErrors++
  }
  const words = corr + sub + del
  const errors = sub + del + ins
  return {
    speaker,
    sentences: utts.length,
    words,
    corr,
    sub,
    del,
    ins,
    errors,
    sentenceErrors,
    pct: {
      corr: pct(corr, words),
      sub: pct(sub, words),
      del: pct(del, words),
      ins: pct(ins, words),
      err: pct(errors, words),
      sentErr: pct(sentenceErrors, utts.length),
    },
  }
}

/** Aligns and scores every hypothesis utterance. */
export function scoreTrn(refs: readonly TrnEntry[], hyps: readonly TrnEntry[], opts: ScoreOptions = {}): ScoreResult {
  const costs = opts.costs ?? SCLITE_COSTS
  const refById = new Map<string, TrnEntry>()
  for (const r of refs) {
    const prev = refById.get(r.id)
    if (prev && prev.words.join(' ') !== r.words.join(' ')) {
      throw new ScoringError(`two different reference texts for utterance "${r.id}" (lines ${prev.line} and ${r.line})`)
    }
    if (!prev) refById.set(r.id, r)
  }
  const utterances: UtteranceScore[] = []
  const bySpeaker = new Map<string, UtteranceScore[]>()
  for (const h of hyps) {
    const r = refById.get(h.id)
    if (!r) throw new ScoringError(`no reference for hypothesis utterance "${h.id}" (line ${h.line})`)
    const ref = opts.map ? applyLabelMap(r.words, opts.map) : [...r.words]
    const hyp = opts.map ? applyLabelMap(h.words, opts.map) : [...h.words]
    const a = alignWords(ref, hyp, costs)
    const u: UtteranceScore = {
      id: h.id,
      speaker: h.speaker,
      ref,
      hyp,
      pairs: a.pairs,
      corr: a.corr,
      sub: a.sub,
      del: a.del,
      ins: a.ins,
    }
    utterances.push(u)
    let list = bySpeaker.get(h.speaker)
    if (!list) {
      list = []
      bySpeaker.set(h.speaker, list)
    }
    list.push(u)
  }
  const speakers = [...bySpeaker].map(([s, us]) => summarize(s, us))
  return { utterances, speakers, overall: summarize('Sum/Avg', utterances) }
}
