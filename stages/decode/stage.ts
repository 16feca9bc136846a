import type { RecordBatch } from 'apache-arrow'
import { z } from 'zod'
import { KtpError, asUttError } from '../../schemas/errors.js'
import { uttId } from '../../schemas/utterance.js'
import {
  buildLoopGraph,
  decode,
  estimateBigram,
  estimateUnigram,
  uniformLm,
  type BigramLm,
  type HmmGraph,
  type Segment,
} from '../hmm/index.js'
import { vocabulary, type HmmModel } from '../hmm/model.js'
import { frameScoresOf, type ScoresReader } from '../hmm/soft-scores.js'

/**
 * `ktp decode`: Viterbi beam search of network log-posteriors over a word (or phone) loop with a
 * bigram/unigram/uniform LM and optional silence; one hypothesis per utterance.
 */
export const decodeOptions = z.object({
  lm: z
    .enum(['bigram', 'unigram', 'uniform'])
    .default('bigram')
    .describe('language model over the lexicon words; bigram/unigram are estimated from --lm-text'),
  lmSmoothing: z
    .enum(['witten-bell', 'add-k'])
    .default('witten-bell')
    .describe('bigram smoothing (unigrams use add-k)'),
  lmK: z.number().positive().default(1).describe('the k of add-k smoothing'),
  lmScale: z.number().positive().default(1).describe('multiplies LM log-probabilities'),
  acousticScale: z
    .number()
    .positive()
    .default(0.1)
    .describe('multiplies acoustic log-likelihoods (tune on a dev set, not the test set)'),
  insertionPenalty: z
    .number()
    .default(0)
    .describe('log-domain score added at every word entry; negative discourages insertions'),
  beam: z.number().positive().default(16).describe('pruning beam (log score) relative to the best token of a frame'),
  maxActive: z.number().int().min(1).default(5000).describe('most active states kept per frame'),
  optionalSilence: z
    .boolean()
    .default(true)
    .describe('allow the silence unit between and around words (when the HMM has one)'),
  silenceProb: z.number().gt(0).lt(1).default(0.5).describe('probability of taking each optional silence'),
  usePriors: z
    .boolean()
    .default(true)
    .describe('divide posteriors by the model priors (--no-use-priors: use them as they are)'),
  frameShift: z
    .number()
    .min(1)
    .default(10)
    .describe('frame shift in milliseconds (as ktp features): CTM times and the real-time factor'),
})
export type DecodeOptions = z.infer<typeof decodeOptions>

/** Silence tokens in LM training text are not LM words: the graph adds optional silence itself. */
function isSilenceToken(m: HmmModel, vocab: ReadonlySet<string>, w: string): boolean {
  return !vocab.has(w) && (w === '<sil>' || w === m.silence)
}

/**
 * The LM over the model's vocabulary. A word of the training text outside the lexicon is a
 * fatal error naming the line: silently dropping it would skew every estimate around it.
 */
export function estimateLm(
  m: HmmModel,
  o: DecodeOptions,
  sentences: readonly { words: string[]; line: number }[] | null,
  source: string,
): BigramLm {
  const vocab = vocabulary(m)
  if (o.lm === 'uniform') return uniformLm(vocab)
  if (!sentences)
    throw new KtpError(
      'usage',
      `--lm ${o.lm} is estimated from --lm-text FILE (training transcripts); give it, or use --lm uniform`,
    )
  const set = new Set(vocab)
  const clean = sentences.map(({ words, line }) =>
    words.filter((w) => {
      if (set.has(w)) return true
      if (isSilenceToken(m, set, w)) return false
      throw new KtpError('bad-lm-text', `${source}:${line}: word "${w}" is not in the HMM lexicon`)
    }),
  )
  if (clean.length === 0) throw new KtpError('bad-lm-text', `${source}: no sentences`)
  return o.lm === 'unigram'
    ? estimateUnigram(vocab, clean, o.lmK)
    : estimateBigram(vocab, clean, o.lmSmoothing === 'add-k' ? { kind: 'add-k', k: o.lmK } : { kind: 'witten-bell' })
}

export function decodeGraph(m: HmmModel, lm: BigramLm, o: DecodeOptions): HmmGraph {
  return buildLoopGraph(m.lexicon, m.units, m.transitions, {
    lm,
    lmScale: o.lmScale,
    insertionPenalty: o.insertionPenalty,
    silence: o.optionalSilence && m.silence !== null ? { unit: m.silence, prob: o.silenceProb } : undefined,
  })
}

export interface Hypothesis {
  utt: string
  words: readonly string[]
  /** word and silence segments in frames */
  segments: readonly Segment[]
  frames: number
  /** false: no final state survived the beam; this is the best partial path */
  reachedFinal: boolean
  /** time spent in the search */
  searchMs: number
}

export interface DecodeContext {
  model: HmmModel
  graph: HmmGraph
  options: DecodeOptions
  scores: ScoresReader
}

export function decodeBatch(ctx: DecodeContext, batch: RecordBatch): Hypothesis {
  const utt = uttId(batch)
  try {
    const scores = frameScoresOf(batch, ctx.scores, ctx.options)
    const t0 = performance.now()
    const r = decode(ctx.graph, scores, { beam: ctx.options.beam, maxActive: ctx.options.maxActive })
    const searchMs = performance.now() - t0
    if (r.numFrames === 0) throw new Error('no frames to decode')
    return { utt, words: r.words, segments: r.segments, frames: r.numFrames, reachedFinal: r.reachedFinal, searchMs }
  } catch (err) {
    throw asUttError(err, utt)
  }
}

/** Utterances in, hypotheses out (in input order); a failing utterance is a UttError in the stream. */
export function decodeStage(ctx: DecodeContext): (s: Highland.Stream<RecordBatch>) => Highland.Stream<Hypothesis> {
  return (s) => s.map((b) => decodeBatch(ctx, b))
}
