import { existsSync } from 'node:fs'
import type { RecordBatch, Schema } from 'apache-arrow'
import { z } from 'zod'
import { KtpError, UttError, asUttError } from '../../schemas/errors.js'
import { hashBytes } from '../../schemas/fingerprint.js'
import { makeSchema } from '../../schemas/kinds.js'
import { makeUttBatch, numFrames, uttId } from '../../schemas/utterance.js'
import { writeFileAtomic } from '../../pipeline/io/atomic-file.js'
import type { OpenInput, StagePlan } from '../../pipeline/io/command.js'
import type { Transform } from '../../pipeline/io/run-stage.js'
import {
  AlignmentError,
  buildAlignGraph,
  uniformSegmentation,
  viterbiAlign,
  wordPdfs,
  type FrameScores,
  type Segment,
} from '../hmm/index.js'
import { hmmFingerprint, pdfNames, readHmm, type HmmModel } from '../hmm/model.js'
import { frameScoresOf, scoresReader, type ScoresReader } from '../hmm/soft-scores.js'
import { formatCtm, parseCtm, parseKaldiText, readText, secondsToFrame, type CtmEntry } from '../formats/transcripts.js'

/**
 * `ktp align`: frame labels (a pdf id per frame, labels@1) from transcripts and an HMM model,
 * either by flat start (uniform segmentation, optionally inside known word spans) or by Viterbi
 * forced alignment of network log-posteriors. The labels carry `ktp.num_classes` and
 * `ktp.inventory` (a JSON array of pdf names, index = class id) so a trainer needs nothing else.
 */
export const alignOptions = z.object({
  flatStart: z
    .boolean()
    .default(false)
    .describe(
      'uniform segmentation instead of Viterbi: needs --feats (frame counts only); with --ctm, inside the known word spans',
    ),
  acousticScale: z
    .number()
    .positive()
    .default(0.1)
    .describe('Viterbi: scale of the acoustic log-likelihoods against the transition log-probabilities'),
  usePriors: z
    .boolean()
    .default(true)
    .describe('Viterbi: divide posteriors by the model priors (--no-use-priors: use them as they are)'),
  optionalSilence: z
    .boolean()
    .default(true)
    .describe('Viterbi: allow the silence unit before, between and after words (when the HMM has one)'),
  silenceProb: z.number().gt(0).lt(1).default(0.5).describe('Viterbi: probability of taking each optional silence'),
  frameShift: z
    .number()
    .min(1)
    .default(10)
    .describe('frame shift in milliseconds (as ktp features), to turn CTM seconds into frames and back'),
})
export type AlignOptions = z.infer<typeof alignOptions>

export interface UttAlignment {
  pdfs: Int32Array
  /** word segments in frames, silences included and flagged */
  words: Segment[]
}

const isSilenceWord = (m: HmmModel, w: string) =>
  w === '<sil>' || (m.silence !== null && w === m.silence && !m.lexicon.has(w))

function unitPdfs(m: HmmModel, unit: string): Int32Array {
  const u = m.units.index.get(unit)!
  return Int32Array.from({ length: m.units.numStates[u]! }, (_, k) => m.units.pdfOffset[u]! + k)
}

/** Frame i of n → state ⌊i·K/n⌋; a gap shorter than K states skips some rather than failing. */
function spread(out: Int32Array, from: number, to: number, pdfs: Int32Array): void {
  const n = to - from
  for (let i = 0; i < n; i++) out[from + i] = pdfs[Math.floor((i * pdfs.length) / n)]!
}

/** Flat start over the whole utterance: the words' states one after another, evenly. */
export function flatStartWhole(m: HmmModel, words: readonly string[], frames: number): UttAlignment {
  const per = words.map((w) => wordPdfs(m.lexicon, w, m.units))
  const all = Int32Array.from(per.flatMap((p) => [...p]))
  if (all.length === 0) throw new Error('the transcript is empty; flat start needs at least one word (or --ctm spans)')
  if (frames < all.length)
    throw new AlignmentError(
      'too-short',
      `utterance has ${frames} frames but the transcript's ${all.length} states need at least ${all.length}`,
      frames,
      all.length,
    )
  const seg = uniformSegmentation(frames, all.length)
  const pdfs = Int32Array.from(seg, (k) => all[k]!)
  const segments: Segment[] = []
  let first = 0
  words.forEach((w, i) => {
    const last = first + per[i]!.length // state range [first, last)
    const start = seg.indexOf(first)
    let end = start
    while (end < frames && seg[end]! < last) end++
    segments.push({ label: w, start, end, silence: false })
    first = last
  })
  return { pdfs, words: segments }
}

/**
 * Flat start inside CTM word spans (DESIGN §6: FSDD digits at known boundaries). Each span is
 * split evenly over its word's states; frames outside every span are silence, split evenly
 * over the silence states. The CTM's words must be the transcript's words, in order.
 */
export function flatStartSpans(
  m: HmmModel,
  words: readonly string[],
  frames: number,
  ctm: readonly CtmEntry[],
  shiftMs: number,
): UttAlignment {
  const silPdfs = m.silence !== null ? unitPdfs(m, m.silence) : null
  const spoken = ctm.filter((e) => !isSilenceWord(m, e.word)).map((e) => e.word)
  if (spoken.join(' ') !== words.join(' ')) {
    throw new Error(`CTM words "${spoken.join(' ')}" differ from the transcript "${words.join(' ')}"`)
  }
  const pdfs = new Int32Array(frames).fill(-1)
  const segments: Segment[] = []
  let prevEnd = 0
  for (const e of ctm) {
    const start = secondsToFrame(e.start, shiftMs)
    const end = Math.min(frames, secondsToFrame(e.start + e.duration, shiftMs))
    if (start < prevEnd) throw new Error(`CTM line ${e.line}: "${e.word}" at ${e.start}s overlaps the previous word`)
    if (start >= frames)
      throw new Error(`CTM line ${e.line}: "${e.word}" starts at frame ${start}, after the last frame (${frames})`)
    const sil = isSilenceWord(m, e.word)
    const p = sil ? silPdfs : wordPdfs(m.lexicon, e.word, m.units)
    if (!p) throw new Error(`CTM line ${e.line}: silence word "${e.word}" but the HMM has no silence unit`)
    if (end - start < p.length) {
      throw new AlignmentError(
        'too-short',
        `CTM line ${e.line}: "${e.word}" spans ${end - start} frames but has ${p.length} states`,
        end - start,
        p.length,
      )
    }
    spread(pdfs, start, end, p)
    segments.push({ label: sil ? '<sil>' : e.word, start, end, silence: sil })
    prevEnd = end
  }
  // the gaps between spans
  for (let t = 0; t < frames; ) {
    if (pdfs[t] !== -1) {
      t++
      continue
    }
    let u = t
    while (u < frames && pdfs[u] === -1) u++
    if (!silPdfs) {
      throw new Error(
        `frames ${t}..${u - 1} lie outside every CTM word and the HMM has no silence unit (ktp hmm-init --silence sil)`,
      )
    }
    spread(pdfs, t, u, silPdfs)
    segments.push({ label: '<sil>', start: t, end: u, silence: true })
    t = u
  }
  segments.sort((a, b) => a.start - b.start)
  return { pdfs, words: segments }
}

/** Viterbi forced alignment of one utterance against its transcript. */
export function viterbiUtterance(
  m: HmmModel,
  words: readonly string[],
  scores: FrameScores,
  o: AlignOptions,
): UttAlignment {
  const silence = o.optionalSilence && m.silence !== null ? { unit: m.silence, prob: o.silenceProb } : undefined
  if (words.length === 0 && !silence)
    throw new Error('the transcript is empty and the HMM has no silence unit to align it with')
  const g = buildAlignGraph(words, m.lexicon, m.units, m.transitions, silence)
  const r = viterbiAlign(g, scores, m.units.units)
  return { pdfs: r.pdfs, words: [...r.words] }
}

/** labels@1 with the model's class inventory in the metadata. */
export function labelsSchema(m: HmmModel): Schema {
  return makeSchema('labels', {
    metadata: {
      'ktp.num_classes': String(m.units.numPdfs),
      'ktp.inventory': JSON.stringify(pdfNames(m.units)),
      'ktp.hmm': hmmFingerprint(m),
    },
  })
}

export interface AlignContext {
  model: HmmModel
  options: AlignOptions
  transcripts: ReadonlyMap<string, readonly string[]>
  /** flat start with spans: CTM entries per utterance */
  ctm?: ReadonlyMap<string, readonly CtmEntry[]>
  /** Viterbi: how to read the soft-dense input */
  scores?: ScoresReader
  /** called with every aligned utterance's word segments (for --ctm-out) */
  onSegments?: (utt: string, words: readonly Segment[]) => void
}

/** The pure per-utterance step; any failure names the utterance. */
export function alignBatch(ctx: AlignContext, schema: Schema, batch: RecordBatch): RecordBatch {
  const utt = uttId(batch)
  try {
    const words = ctx.transcripts.get(utt)
    if (!words) throw new UttError('no-transcript', utt, 'no transcript in --text')
    let a: UttAlignment
    if (ctx.options.flatStart) {
      const frames = numFrames(batch)
      if (ctx.ctm) {
        const spans = ctx.ctm.get(utt)
        if (!spans) throw new UttError('no-ctm', utt, 'no word spans in --ctm')
        a = flatStartSpans(ctx.model, words, frames, spans, ctx.options.frameShift)
      } else {
        a = flatStartWhole(ctx.model, words, frames)
      }
    } else {
      a = viterbiUtterance(ctx.model, words, frameScoresOf(batch, ctx.scores!, ctx.options), ctx.options)
    }
    ctx.onSegments?.(utt, a.words)
    return makeUttBatch(schema, { utt, labels: a.pdfs })
  } catch (err) {
    throw asUttError(err, utt)
  }
}

export function alignStage(ctx: AlignContext, schema: Schema = labelsSchema(ctx.model)): Transform {
  return (s) => s.map((b) => alignBatch(ctx, schema, b))
}

/** The files `ktp align` reads and writes besides its input and output. */
export interface AlignFiles {
  /** the HMM model */
  hmm: string
  /** transcripts, Kaldi "text" */
  text: string
  /** flat start: the utterances whose frames to label */
  feats?: string
  /** flat start: known word spans */
  ctm?: string
  /** also write the aligned word segments here */
  ctmOut?: string
  /** Viterbi: the soft-dense scores (a file, or - for stdin) */
  scores?: string
}

/**
 * A run of `ktp align`: the model and transcripts read, the option combination checked, then
 * the input opened — the --feats of a flat start, or the scores to realign. The model and the
 * contents of --text and --ctm enter the fingerprint. With --ctm-out, the word segments are
 * written after the run (complete only when every utterance was aligned by this run).
 */
export async function planAlign(opts: AlignOptions, f: AlignFiles, open: OpenInput): Promise<StagePlan> {
  const log = (l: string) => process.stderr.write(`${l}\n`)
  const model = readHmm(f.hmm)
  const textRaw = readText(f.text, '--text')
  const transcripts = parseKaldiText(textRaw, f.text)
  let ctmRaw: string | undefined
  if (opts.flatStart) {
    if (!f.feats) throw new KtpError('usage', '--flat-start needs --feats FILE (the utterances whose frames to label)')
    if (f.scores !== undefined)
      throw new KtpError('usage', `--flat-start reads frame counts from --feats; drop the scores input '${f.scores}'`)
    if (f.ctm) ctmRaw = readText(f.ctm, '--ctm')
  } else {
    if (f.feats || f.ctm)
      throw new KtpError('usage', '--feats and --ctm go with --flat-start; Viterbi realignment reads soft-dense scores')
    if (f.scores === undefined)
      throw new KtpError(
        'usage',
        'give the soft-dense scores (a file, or - for stdin), or use --flat-start --feats FILE',
      )
  }
  const input = opts.flatStart ? await open(f.feats!, []) : await open(f.scores!, ['soft-dense'])
  const scores = opts.flatStart ? undefined : scoresReader(input.schema, input.name, model, opts)
  if (scores?.flatPriors && opts.usePriors)
    log(`ktp align: note: ${f.hmm} has no priors; aligning with unnormalised posteriors (add them with ktp hmm-update)`)

  const segments = new Map<string, readonly Segment[]>()
  const ctmOut = f.ctmOut
  return {
    stage: 'align',
    options: {
      ...opts,
      hmm: hmmFingerprint(model),
      text: hashBytes(textRaw),
      ctm: ctmRaw === undefined ? null : hashBytes(ctmRaw),
    },
    input,
    schema: labelsSchema(model),
    transform: alignStage({
      model,
      options: opts,
      transcripts,
      ctm: ctmRaw === undefined ? undefined : parseCtm(ctmRaw, f.ctm!),
      scores,
      onSegments: ctmOut ? (utt, w) => segments.set(utt, w) : undefined,
    }),
    after: (r) => {
      if (!ctmOut || (r.upToDate && existsSync(ctmOut))) return
      if (r.upToDate || r.resumed > 0) {
        log(
          `ktp align: WARNING ${ctmOut} lacks the ${r.upToDate ? 'utterances of the up-to-date output' : `${r.resumed} utterances resumed from an earlier run`}; rerun with --force for a complete CTM`,
        )
      }
      writeFileAtomic(ctmOut, [...segments].map(([utt, w]) => formatCtm(utt, w, opts.frameShift)).join(''))
    },
  }
}
