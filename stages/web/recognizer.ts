/**
 * The recogniser of the page `ktp export --web` writes: a recording to words with ktp's own code,
 * bundled for the browser — decodeAudio (audio/), Kaldi fbank/MFCC (dsp/kaldi-features.ts), CMVN
 * and splicing (dsp/), the student in tfjs-layers (nn/export-layers.ts registers its custom LSTM),
 * log-softmax, division by the HMM priors and the acoustic scale, and the same Viterbi beam search
 * over the same loop graph as `ktp decode` (hmm/). Nothing here touches the DOM or Node, so it
 * runs wherever tfjs runs.
 */
import * as tf from '@tensorflow/tfjs'
import { AudioError, decodeAudio } from '../audio/decode.js'
import { applyCmvn, normalizer, type Normalizer } from '../dsp/cmvn.js'
import {
  type FbankOptions,
  type Features,
  type MfccOptions,
  computeFbank,
  computeMfcc,
  numFrames,
  parseFbankOptions,
  parseMfccOptions,
  seedFor,
} from '../dsp/kaldi-features.js'
import { spliceFrames } from '../dsp/splice.js'
import { buildAlignGraph, decode, type HmmGraph, lmFromJson, posteriorsToLoglik, viterbiAlign } from '../hmm/index.js'
import type { BigramLm } from '../hmm/lm.js'
import { hybridLoopGraph, hybridPriors } from '../hmm/hybrid.js'
import { hmmFromJson, type HmmModel } from '../hmm/model-json.js'
import { KtpLSTM } from '../nn/browser.js'
import { SITE_FILES, SITE_FORMAT, SITE_VERSION, type SiteManifest } from './site.js'

/** A failure the page shows as it is: one line naming the file and what was expected. */
export class RecognitionError extends Error {
  override name = 'RecognitionError'
}

export interface Site {
  manifest: SiteManifest
  hmm: HmmModel
  lm: BigramLm
  graph: HmmGraph
  priors: Float64Array
  norm: Normalizer
  kaldi: FbankOptions | MfccOptions
  model: tf.LayersModel
}

export interface Recognition {
  name: string
  words: readonly string[]
  /** False: no final state survived the beam (the words are the best partial path, as ktp decode warns). */
  reachedFinal: boolean
  frames: number
  classes: number
  /** Log-posteriors, frames × classes, frame-major: what `ktp infer --top-k 0 --dtype f32` writes. */
  logp: Float32Array
  /** The pdf of every frame on the best path (the decoded words force-aligned). */
  path: Int32Array
  audioSeconds: number
  /** Milliseconds spent in the front end, the network and the search. */
  ms: { features: number; network: number; search: number; total: number }
  /** Processing time over audio duration. */
  rtf: number
}

/** Fetches a site file as JSON; a missing or broken file is an error naming it. */
export type JsonFetcher = (file: string) => Promise<unknown>

/** Read a site: its manifest, HMM, LM and CMVN stats, and the student (tfjs-layers). */
export async function loadSite(fetchJson: JsonFetcher, loadModel: (file: string) => Promise<tf.LayersModel>) {
  const manifest = (await fetchJson(SITE_FILES.manifest)) as SiteManifest
  if (manifest?.format !== SITE_FORMAT || manifest.version !== SITE_VERSION)
    throw new RecognitionError(`${SITE_FILES.manifest}: not a ${SITE_FORMAT}@${SITE_VERSION} manifest`)
  const hmm = hmmFromJson(await fetchJson(SITE_FILES.hmm), SITE_FILES.hmm)
  const lm = lmFromJson(await fetchJson(SITE_FILES.lm), SITE_FILES.lm)
  const stats = (await fetchJson(SITE_FILES.cmvn)) as {
    dim: number
    stats: Record<string, { count: number; sum: number[]; sumsq: number[] }>
  }
  const global = stats?.stats?.global
  if (!global || stats.dim !== manifest.model.featureDim)
    throw new RecognitionError(`${SITE_FILES.cmvn}: expected global statistics of dim ${manifest.model.featureDim}`)
  const acc = { count: global.count, sum: Float64Array.from(global.sum), sumsq: Float64Array.from(global.sumsq) }
  const norm = normalizer(acc, manifest.cmvn.normVars, manifest.cmvn.varFloor)
  const f = manifest.features
  const kaldi = f.type === 'mfcc' ? parseMfccOptions(f.kaldi) : parseFbankOptions(f.kaldi)
  const d = manifest.decoding
  void KtpLSTM // registered on import, so that a student with a custom LSTM loads by name
  const model = await loadModel(SITE_FILES.model)
  return {
    manifest,
    hmm,
    lm,
    graph: hybridLoopGraph(hmm, lm, d),
    priors: hybridPriors(hmm, d.usePriors).priors,
    norm,
    kaldi,
    model,
  } satisfies Site
}

/** The sample rate the student was trained at. */
export const modelRate = (site: Site): number => site.kaldi.sampleFrequency

/** Decode a recording's bytes (RIFF/WAVE or SPHERE, by content); errors name the file. */
export function readRecording(bytes: Uint8Array, name: string): { samples: Float32Array; rate: number } {
  if (bytes.length === 0) throw new RecognitionError(`${name}: the file is empty; expected a WAV recording`)
  try {
    const a = decodeAudio(bytes, { name, channel: 0 })
    return { samples: a.samples, rate: a.sampleRate }
  } catch (err) {
    if (!(err instanceof AudioError)) throw err
    const hint = err.code === 'unknown-format' ? ' (expected a WAV or SPHERE recording)' : ''
    throw new RecognitionError(`${err.message}${hint}`)
  }
}

/** The front end exactly as `ktp features` (seeded per utterance), then CMVN and splicing as trained. */
function networkInput(site: Site, samples: Float32Array, utt: string): { x: Float32Array; frames: number } {
  const { kaldi, manifest } = site
  const feats: Features =
    manifest.features.type === 'mfcc'
      ? computeMfcc(samples, kaldi as MfccOptions, seedFor(kaldi.seed, utt))
      : computeFbank(samples, kaldi as FbankOptions, seedFor(kaldi.seed, utt))
  const { numFrames: T, dim: D } = feats
  const x = applyCmvn(feats.data, T, D, site.norm)
  const { left, right } = manifest.model.splice
  return { x: manifest.model.input === 'frames' ? spliceFrames(x, T, D, left, right) : x, frames: T }
}

/** Log-softmax of the student's logits for one utterance, [T, C] frame-major. */
async function logPosteriors(site: Site, x: Float32Array, T: number): Promise<Float32Array> {
  const { input, numClasses } = site.manifest.model
  const lp = tf.tidy(() => {
    const inp = input === 'chunks' ? tf.tensor3d(x, [1, T, x.length / T]) : tf.tensor2d(x, [T, x.length / T])
    const z = site.model.predict(inp) as tf.Tensor
    return tf.logSoftmax(tf.reshape(z, [T, numClasses]))
  })
  try {
    return (await lp.data()) as Float32Array
  } finally {
    lp.dispose()
  }
}

/**
 * One recording (already at the model's rate) to words. `name` is the utterance id (it seeds
 * dither, as in `ktp features`). Throws RecognitionError for audio the model cannot take.
 */
export async function recognize(site: Site, samples: Float32Array, rate: number, name: string): Promise<Recognition> {
  const sf = modelRate(site)
  if (rate !== sf)
    throw new RecognitionError(
      `${name}: the audio is ${rate} Hz but the model was trained on ${sf} Hz audio; record or convert it at ${sf} Hz`,
    )
  if (numFrames(samples.length, site.kaldi) === 0)
    throw new RecognitionError(
      `${name}: ${samples.length} samples at ${sf} Hz is shorter than one ${site.kaldi.frameLength} ms frame`,
    )
  const t0 = performance.now()
  const { x, frames: T } = networkInput(site, samples, name)
  const t1 = performance.now()
  const logp = await logPosteriors(site, x, T)
  const t2 = performance.now()
  const C = site.manifest.model.numClasses
  const nan = logp.findIndex((v) => Number.isNaN(v))
  if (nan >= 0) throw new RecognitionError(`${name}: the network gave NaN at frame ${Math.floor(nan / C)}`)
  const d = site.manifest.decoding
  const scores = posteriorsToLoglik({ numFrames: T, numPdfs: C, data: logp }, site.priors, {
    acousticScale: d.acousticScale,
    inputIsLog: true,
  })
  const r = decode(site.graph, scores, { beam: d.beam, maxActive: d.maxActive })
  const t3 = performance.now()
  const audioSeconds = samples.length / sf
  return {
    name,
    words: r.words,
    reachedFinal: r.reachedFinal,
    frames: T,
    classes: C,
    logp,
    path: bestPath(site, r.words, scores),
    audioSeconds,
    ms: { features: t1 - t0, network: t2 - t1, search: t3 - t2, total: t3 - t0 },
    rtf: (t3 - t0) / 1000 / audioSeconds,
  }
}

/** The pdf per frame of the decoded words, force-aligned with the same optional silence (for the picture only). */
function bestPath(site: Site, words: readonly string[], scores: Parameters<typeof viterbiAlign>[1]): Int32Array {
  const { hmm } = site
  const d = site.manifest.decoding
  const silence = d.optionalSilence && hmm.silence !== null ? { unit: hmm.silence, prob: d.silenceProb } : undefined
  try {
    return viterbiAlign(buildAlignGraph(words, hmm.lexicon, hmm.units, hmm.transitions, silence), scores).pdfs
  } catch {
    return new Int32Array(0) // a path the aligner cannot fit (a partial hypothesis): no overlay
  }
}
