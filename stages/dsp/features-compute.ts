/**
 * The per-utterance work of `ktp features` (features.ts): a plain async function of a serialisable
 * task, so it runs the same on the main thread (--jobs 1) and in worker threads
 * (features-worker.ts). Kept apart from the stage (Arrow, highland, option schemas) so that a
 * worker loads only what it computes with.
 */
import { UttError } from '../../schemas/errors.js'
import { AudioError, type DecodedAudio, decodeAudio, resample } from '../audio/decode.js'
import {
  computeFbank,
  computeMfcc,
  numFrames,
  seedFor,
  type FbankOptions,
  type Features,
  type MfccOptions,
} from './kaldi-features.js'
import { readAudioBytes } from '../formats/audio-bytes.js'
import { isCommand } from '../formats/datadir-io.js'

/** Validated, frozen per-type options (the plan cache in kaldi-features keys on the object). */

export const FEATURE_TYPES = ['fbank', 'mfcc'] as const
export type FeatureType = (typeof FEATURE_TYPES)[number]

export interface FeaturePlan {
  type: FeatureType
  kaldi: FbankOptions | MfccOptions
  dim: number
  resample: boolean
  channel?: number
}

/** One utterance's work, serialisable for a worker: a manifest@1 row. */
export interface FeatureTask {
  utt: string
  audio: string
  channel: number | null
  start: number | null
  end: number | null
}

/** Kaldi's extract-segments tolerates a segment end this far past the audio (then clips it). */
const MAX_OVERSHOOT_S = 0.5

/**
 * Samples [round(start·rate), round(end·rate)) — rounded, not truncated as Kaldi does, so that
 * 0.3 s at 8 kHz is sample 2400 and not 2399 (0.3·8000 = 2399.9999…).
 */
function cut(x: Float32Array, rate: number, t: FeatureTask, file: string): Float32Array {
  if (t.start === null && t.end === null) return x
  const dur = x.length / rate
  const a = Math.round((t.start ?? 0) * rate)
  let b = t.end === null ? x.length : Math.round(t.end * rate)
  if (t.end !== null && t.end > dur + MAX_OVERSHOOT_S) {
    throw new UttError(
      'bad-segment',
      t.utt,
      `segment ends at ${t.end} s but the recording lasts ${dur.toFixed(3)} s`,
      file,
    )
  }
  b = Math.min(b, x.length)
  if (a >= b)
    throw new UttError(
      'bad-segment',
      t.utt,
      `segment [${t.start}, ${t.end ?? 'end'}) s is empty in a ${dur.toFixed(3)} s recording`,
      file,
    )
  return x.subarray(a, b)
}

export interface ComputeContext {
  plan: FeaturePlan
  allowCommands: boolean
}

/** Read, decode, cut, check the rate, compute. Throws UttError naming the utterance and the file. */
export async function computeUtterance(t: FeatureTask, ctx: ComputeContext): Promise<Features> {
  const { plan } = ctx
  const file = isCommand(t.audio) ? `command '${t.audio.replace(/\|\s*$/, '').trim()}'` : t.audio
  const bytes = await readAudioBytes(t.audio, { utt: t.utt, allowCommands: ctx.allowCommands, file: t.audio })
  let audio: DecodedAudio
  try {
    audio = decodeAudio(bytes, { name: file, channel: t.channel ?? plan.channel })
  } catch (err) {
    if (!(err instanceof AudioError)) throw err
    const hint = err.code === 'needs-channel' ? '; pass --channel N (0-based) for the whole input' : ''
    throw new UttError(err.code, t.utt, `${err.message.slice(err.file.length + 2)}${hint}`, file)
  }
  const sf = plan.kaldi.sampleFrequency
  let x = cut(audio.samples, audio.sampleRate, t, file)
  if (audio.sampleRate !== sf) {
    if (!plan.resample) {
      throw new UttError(
        'wrong-rate',
        t.utt,
        `audio is ${audio.sampleRate} Hz but --sample-frequency is ${sf}; pass --resample or set --sample-frequency ${audio.sampleRate}`,
        file,
      )
    }
    if (!Number.isInteger(sf))
      throw new UttError('wrong-rate', t.utt, `cannot resample to a non-integer --sample-frequency ${sf}`, file)
    x = resample(x, audio.sampleRate, sf)
  }
  if (numFrames(x.length, plan.kaldi) === 0) {
    throw new UttError(
      'too-short',
      t.utt,
      `${x.length} samples at ${sf} Hz is shorter than one ${plan.kaldi.frameLength} ms frame`,
      file,
    )
  }
  const seed = seedFor(plan.kaldi.seed, t.utt)
  return plan.type === 'mfcc'
    ? computeMfcc(x, plan.kaldi as MfccOptions, seed)
    : computeFbank(x, plan.kaldi as FbankOptions, seed)
}

/** Computes one task somewhere (this thread, a worker) and resolves with its features. */
export type Runner = (t: FeatureTask) => Promise<Features>

export const inlineRunner =
  (ctx: ComputeContext): Runner =>
  (t) =>
    computeUtterance(t, ctx)
