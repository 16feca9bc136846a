import { once } from 'node:events'
import type { RecordBatch } from 'apache-arrow'
import { z } from 'zod'
import { writeFileAtomic } from '../../pipeline/io/atomic-file.js'
import { arrowInput, drain } from '../../pipeline/io/run-stage.js'
import { KtpError, UttError, asUttError } from '../../schemas/errors.js'
import { uttId } from '../../schemas/utterance.js'
import {
  decode,
  estimateBigram,
  estimateUnigram,
  uniformLm,
  type BigramLm,
  type HmmGraph,
  type Segment,
} from '../hmm/index.js'
import { hybridLoopGraph } from '../hmm/hybrid.js'
import { readHmm, vocabulary, type HmmModel } from '../hmm/model.js'
import { frameScoresOf, scoresReader, type ScoresReader } from '../hmm/soft-scores.js'
import { formatCtm, formatTrn, parseSentences, readText } from '../formats/transcripts.js'

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
  return hybridLoopGraph(m, lm, o)
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

/** What `ktp decode` reads and writes besides its options. */
export interface DecodeFiles {
  /** soft-dense scores: a file, or - for stdin */
  scores: string
  /** the HMM model */
  hmm: string
  /** LM training text (bigram/unigram) */
  lmText?: string
  /** sclite trn hypotheses, or - for stdout (as they come) */
  output: string
  /** also write the hypotheses' word segments as a CTM */
  ctmOut?: string
  /** no summary on stderr */
  quiet: boolean
}

/**
 * `ktp decode`: every utterance of the scores decoded, hypotheses written as sclite trn (to
 * stdout as they come, or to a file written whole at the end), a summary with the real-time
 * factor on stderr. Exit code 1 if some utterances failed.
 */
export async function decodeFiles(opts: DecodeOptions, f: DecodeFiles): Promise<number> {
  const log = (l: string) => process.stderr.write(`${l}\n`)
  const model = readHmm(f.hmm)
  const sentences = f.lmText ? parseSentences(readText(f.lmText, '--lm-text')) : null
  const lm = estimateLm(model, opts, sentences, f.lmText ?? '')
  const input = await arrowInput(f.scores, ['soft-dense'])
  const scores = scoresReader(input.schema, input.name, model, opts)
  if (scores.flatPriors && opts.usePriors)
    log(`ktp decode: note: ${f.hmm} has no priors; decoding unnormalised posteriors (add them with ktp hmm-update)`)
  const graph = decodeGraph(model, lm, opts)

  const toStdout = f.output === '-'
  let pipeClosed = false
  if (toStdout)
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') pipeClosed = true
      else throw e
    })
  const trn: string[] = []
  const ctm: string[] = []
  const seen = new Set<string>()
  let done = 0,
    failed = 0,
    frames = 0,
    searchMs = 0
  const t0 = performance.now()
  const warn = (msg: string) => log(`ktp decode: WARNING ${msg}`)
  await drain(
    decodeStage({ model, graph, options: opts, scores })(input.stream()),
    async (h) => {
      if (seen.has(h.utt)) {
        failed++
        warn(`${h.utt}: utterance id appears twice in ${input.name}; the second is skipped`)
        return
      }
      seen.add(h.utt)
      if (!h.reachedFinal)
        warn(`${h.utt}: no final state survived the beam; writing the best partial path (widen --beam or --max-active)`)
      done++
      frames += h.frames
      searchMs += h.searchMs
      const line = formatTrn(h.utt, h.words)
      if (f.ctmOut) ctm.push(formatCtm(h.utt, h.segments, opts.frameShift))
      if (!toStdout) trn.push(line)
      else if (!pipeClosed && !process.stdout.write(line))
        await Promise.race([once(process.stdout, 'drain'), once(process.stdout, 'close')])
    },
    (err) => {
      if (!(err instanceof UttError)) return false
      failed++
      warn(err.message)
      return true
    },
    () => pipeClosed,
  )
  // files appear whole or not at all: a failed run leaves the previous ones untouched
  if (!toStdout) writeFileAtomic(f.output, trn.join(''))
  if (f.ctmOut) writeFileAtomic(f.ctmOut, ctm.join(''))
  if (!f.quiet) {
    const audio = (frames * opts.frameShift) / 1000
    const wall = (performance.now() - t0) / 1000
    const rtf = (x: number) => (audio > 0 ? (x / audio).toPrecision(3) : 'n/a')
    log(
      `ktp decode: done ${done}, failed ${failed}; ${audio.toFixed(2)} s of audio in ${wall.toFixed(2)} s, real-time factor ${rtf(wall)} (search alone ${rtf(searchMs / 1000)})`,
    )
  } else if (failed > 0) {
    log(`ktp decode: done ${done}, failed ${failed}`)
  }
  return failed > 0 ? 1 : 0
}
