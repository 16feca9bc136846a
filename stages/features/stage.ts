/**
 * `ktp features`: Kaldi fbank/MFCC features of every utterance of a manifest (a Kaldi data dir or
 * a manifest@1 stream) as a features@1 stream — Kaldi's `extract-segments | compute-fbank-feats`.
 *
 * Per utterance: read the recording (file, or wav.scp command when allowed) → decode (RIFF/SPHERE,
 * by content) → take the channel → cut the segment [start, end) → check or convert the sample rate
 * → compute with dither seeded by `seedFor(seed, utt)`, so values never depend on order, sharding
 * or the number of workers. Every failure is an UttError naming the utterance and the file.
 *
 * The per-utterance work (`computeUtterance`, features-compute.ts) is a plain async function of a
 * serialisable task, so it runs the same on the main thread (--jobs 1) and in worker threads
 * (features-worker.ts).
 */
import { statSync } from 'node:fs'
import type { RecordBatch, Schema } from 'apache-arrow'
import _ from 'highland'
import type { OpenInput, StagePlan } from '../../pipeline/io/command.js'
import { mapOrdered } from '../../pipeline/io/pull.js'
import type { StageInput, Transform } from '../../pipeline/io/run-stage.js'
import { z } from 'zod'
import { KtpError, UttError } from '../../schemas/errors.js'
import { makeSchema } from '../../schemas/kinds.js'
import { getNumber, getString, makeUttBatch, uttId } from '../../schemas/utterance.js'
import { decodeAudio } from '../audio/decode.js'
import {
  FeatureOptionsError,
  fbankOptionsSchema,
  mfccOptionsSchema,
  parseFbankOptions,
  parseMfccOptions,
  type FbankOptions,
  type MfccOptions,
  checkMelBanks,
} from '../dsp/kaldi-features.js'
import { type FeaturePlan, type FeatureTask, type Runner, inlineRunner } from '../dsp/features-compute.js'
import { FeaturePool } from '../dsp/features-worker.js'
import { readAudioBytes } from '../formats/audio-bytes.js'
import { dataDirInput } from '../formats/kaldi-datadir.js'

export { computeUtterance, inlineRunner } from '../dsp/features-compute.js'
export type { ComputeContext, FeaturePlan, FeatureTask, Runner } from '../dsp/features-compute.js'

import { FEATURE_TYPES } from '../dsp/features-compute.js'
export { FEATURE_TYPES, type FeatureType } from '../dsp/features-compute.js'

const fb = fbankOptionsSchema.shape
const mf = mfccOptionsSchema.shape
/** The options only one feature type has; the CLI takes them all and says which type uses them. */
const FBANK_ONLY = ['usePower', 'useLogFbank'] as const
const MFCC_ONLY = ['numCeps', 'cepstralLifter'] as const

/**
 * Every Kaldi option of both feature types (from the kaldi-features schemas, the single source of
 * truth) plus what the stage adds. Cross-option checks (window geometry, numCeps ≤ numMelBins) are
 * those of the chosen type's schema, reported under the option at fault.
 */
export const featuresOptions = z
  .object({
    type: z.enum(FEATURE_TYPES).default('fbank').describe('Feature type: log mel filter banks or MFCCs'),
    ...fb,
    sampleFrequency: fb.sampleFrequency
      .unwrap()
      .optional()
      .describe(
        'Sample frequency in Hz the features are computed at; default: the rate of the first utterance whose audio reads',
      ),
    usePower: fb.usePower.describe(`fbank only: ${fb.usePower.description}`),
    useLogFbank: fb.useLogFbank.describe(`fbank only: ${fb.useLogFbank.description}`),
    numCeps: mf.numCeps.describe(`mfcc only: ${mf.numCeps.description}`),
    cepstralLifter: mf.cepstralLifter.describe(`mfcc only: ${mf.cepstralLifter.description}`),
    resample: z
      .boolean()
      .default(false)
      .describe('Resample audio whose rate differs from --sample-frequency (otherwise such an utterance fails)'),
    channel: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('Channel (0-based) to take from multi-channel audio where the manifest names none'),
  })
  .superRefine((o, ctx) => {
    // (an unset sampleFrequency is checked once known, in featurePlan)
    const r = (o.type === 'mfcc' ? mfccOptionsSchema : fbankOptionsSchema).safeParse(typeOptions(o))
    if (r.success) return
    // Range errors are already reported by this schema's own copy of the field: forward only the
    // cross-option checks, and only for options that passed their own range check.
    const failed = new Set(r.error.issues.filter((i) => i.code !== 'custom').map((i) => String(i.path[0])))
    for (const i of r.error.issues) {
      if (i.code === 'custom' && !failed.has(String(i.path[0])))
        ctx.addIssue({ code: 'custom', path: i.path, message: i.message })
    }
  })
export type FeaturesOptions = z.output<typeof featuresOptions>

/** The options of the chosen type only (what its schema accepts). */
function typeOptions(o: Record<string, unknown>): Record<string, unknown> {
  const skip = new Set<string>(o.type === 'mfcc' ? FBANK_ONLY : MFCC_ONLY)
  const keys = Object.keys(o.type === 'mfcc' ? mf : fb).filter((k) => !skip.has(k))
  return Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]))
}

/** `rate`: the sample frequency to use when the options leave it unset (see probeSampleRate). */
export function featurePlan(o: FeaturesOptions, rate?: number): FeaturePlan {
  const t = typeOptions({ ...o, sampleFrequency: o.sampleFrequency ?? rate })
  let kaldi: FbankOptions | MfccOptions
  try {
    kaldi = o.type === 'mfcc' ? parseMfccOptions(t) : parseFbankOptions(t)
  } catch (err) {
    if (!(err instanceof FeatureOptionsError)) throw err
    throw new KtpError(
      'usage',
      `${err.message} (with --sample-frequency ${t.sampleFrequency ?? 16000}${o.sampleFrequency === undefined ? ', the rate of the audio' : ''})`,
    )
  }
  checkMelBanks(kaldi)
  const dim = o.type === 'mfcc' ? (kaldi as MfccOptions).numCeps : kaldi.numMelBins + (kaldi.useEnergy ? 1 : 0)
  return { type: o.type, kaldi, dim, resample: o.resample, channel: o.channel }
}

/** The options that determine the values: they enter the fingerprint and ktp.producer. */
export function valueOptions(p: FeaturePlan): Record<string, unknown> {
  return { type: p.type, ...p.kaldi, resample: p.resample, channel: p.channel }
}

/** features@1 with the metadata later stages (alignment, labels) need to map frames to time. */
export function featuresSchema(p: FeaturePlan): Schema {
  const k = p.kaldi
  return makeSchema('features', {
    widths: { feats: p.dim },
    metadata: {
      'ktp.feature_type': p.type,
      'ktp.frame_shift_ms': String(k.frameShift),
      'ktp.frame_length_ms': String(k.frameLength),
      'ktp.sample_frequency': String(k.sampleFrequency),
      'ktp.snip_edges': String(k.snipEdges),
    },
  })
}

export function taskOf(b: RecordBatch): FeatureTask {
  const utt = uttId(b)
  const audio = getString(b, 'audio')
  if (audio === null) throw new UttError('no-audio', utt, 'the manifest row has no audio')
  return { utt, audio, channel: getNumber(b, 'channel'), start: getNumber(b, 'start'), end: getNumber(b, 'end') }
}

/**
 * The stream stage: manifest@1 rows in, features@1 rows out, in input order. Up to `inFlight`
 * utterances are being computed at once (`mapOrdered`, highland's ordered `parallel` without a stream per utterance), so the output does not
 * depend on how many workers there are, and the input is pulled only as results are taken.
 */
export function featuresStage(schema: Schema, run: Runner, inFlight = 1): Transform {
  return (s) =>
    mapOrdered(
      s,
      (b) => {
        const t = taskOf(b)
        return run(t).then((f) => makeUttBatch(schema, { utt: t.utt, feats: f.data }))
      },
      Math.max(1, inFlight),
    )
}

/** How many rows to look at for a readable recording before giving up on learning the rate. */
const PROBE_ROWS = 20

/**
 * The sample rate of the first of the input's first rows whose audio reads and decodes (rows and
 * stream errors seen on the way are replayed, so the input is still read once, in order). Used
 * when --sample-frequency is unset: the rate then comes from the data, the same for every shard
 * since it is the input's first rows, not the shard's. null if none of them reads.
 */
export async function probeSampleRate(
  input: StageInput,
  ctx: { channel?: number; allowCommands: boolean },
): Promise<{ rate: number | null; input: StageInput }> {
  const src = input.stream()
  const seen: { err?: unknown; value?: RecordBatch }[] = []
  let ended = false
  let rate: number | null = null
  while (rate === null && !ended && seen.length < PROBE_ROWS) {
    const item = await new Promise<{ err?: unknown; value?: RecordBatch; end?: true }>((resolve) =>
      src.pull((err, x) => resolve(err ? { err } : x === _.nil ? { end: true } : { value: x as RecordBatch })),
    )
    if (item.end) {
      ended = true
      break
    }
    seen.push(item)
    if (!item.value) continue
    try {
      const t = taskOf(item.value)
      const bytes = await readAudioBytes(t.audio, { utt: t.utt, allowCommands: ctx.allowCommands })
      rate = decodeAudio(bytes, { channel: t.channel ?? ctx.channel }).sampleRate
    } catch {
      /* that utterance fails later, with its own message */
    }
  }
  const replay = _<RecordBatch>((push, next) => {
    const it = seen.shift()
    if (it) {
      if (it.value) push(null, it.value)
      else push(it.err as Error)
      return next()
    }
    if (ended)
      return push(null, _.nil)
      // highland: next(stream) hands the rest over to that stream; its typings omit the argument
    ;(next as unknown as (s: Highland.Stream<RecordBatch>) => void)(src)
  })
  return { rate, input: { ...input, stream: () => replay } }
}

/** A data dir (its manifest rows and content fingerprint), or a manifest@1 Arrow file / stdin. */
async function openInput(src: string, allowCommands: boolean, open: OpenInput): Promise<StageInput> {
  let isDir = false
  try {
    isDir = src !== '-' && statSync(src).isDirectory()
  } catch {
    throw new KtpError('no-file', `${src}: no such data dir or manifest file`)
  }
  if (!isDir) return open(src)
  const input = await dataDirInput(src, { allowCommands })
  for (const w of input.warnings) process.stderr.write(`ktp features: WARNING ${w}\n`)
  if (input.total === 0) {
    throw new KtpError(
      'empty',
      `${src}: the data dir has no utterances (${input.data.segments ? 'segments' : 'wav.scp'} is empty); nothing to compute`,
    )
  }
  return input
}

/**
 * A run of `ktp features` over a data dir or a manifest (opened with `open`): the sample rate
 * learnt from the audio when unset, then computed on this thread (jobs 1) or a worker pool
 * (same values either way).
 */
export async function planFeatures(
  o: FeaturesOptions,
  run: { input: string; jobs: number; allowCommands: boolean },
  open: OpenInput,
): Promise<StagePlan> {
  const { allowCommands } = run
  let input = await openInput(run.input, allowCommands, open)
  let rate: number | undefined
  if (o.sampleFrequency === undefined) {
    const probe = await probeSampleRate(input, { channel: o.channel, allowCommands })
    input = probe.input
    rate = probe.rate ?? 16000
    process.stderr.write(
      probe.rate
        ? `ktp features: --sample-frequency ${rate} (the rate of the audio)\n`
        : `ktp features: WARNING none of the first utterances' audio reads; using Kaldi's default --sample-frequency ${rate}\n`,
    )
  }
  const plan = featurePlan(o, rate)
  const schema = featuresSchema(plan)
  const pool = run.jobs > 1 ? new FeaturePool(run.jobs, plan, allowCommands) : null
  return {
    stage: 'features',
    options: valueOptions(plan),
    // Refused commands fail their utterances; allowing them must rebuild the output.
    selection: { allowCommands },
    input,
    schema,
    transform: featuresStage(schema, pool ? pool.run : inlineRunner({ plan, allowCommands }), pool ? pool.inFlight : 2),
    close: () => pool?.close(),
  }
}
