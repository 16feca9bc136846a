/**
 * What a site written by `ktp export --web` holds, shared by the writer (stages/export/) and the
 * page that reads it (page.ts): `site.json` names everything the page needs to turn a recording
 * into words exactly as `ktp features | ktp cmvn apply | ktp infer | ktp decode` do.
 *
 *   index.html, page.js       the page and its one bundled ES module
 *   site.json                 this manifest: front end, CMVN and decoding options, the model's shape
 *   model/model.json, .bin    the student as a tfjs-layers model (logits; the page takes log-softmax)
 *   hmm.json                  the HMM (units, lexicon, transitions, priors), ktp.hmm@1
 *   lm.json                   the LM over the lexicon words, ktp.lm@1
 *   cmvn.json                 the CMVN statistics, ktp-cmvn@1 (global)
 *   *.wasm                    the tfjs wasm backend's binaries
 */
import type { FeatureType } from '../dsp/features-compute.js'
import type { LoopOptions } from '../hmm/hybrid.js'

export const SITE_FORMAT = 'ktp.web-site'
export const SITE_VERSION = 1

export const SITE_FILES = {
  page: 'index.html',
  bundle: 'page.js',
  manifest: 'site.json',
  model: 'model/model.json',
  hmm: 'hmm.json',
  lm: 'lm.json',
  cmvn: 'cmvn.json',
} as const

/** The tfjs wasm backend's binaries, copied beside the page (setWasmPaths points at the site root). */
export const WASM_FILES = [
  'tfjs-backend-wasm.wasm',
  'tfjs-backend-wasm-simd.wasm',
  'tfjs-backend-wasm-threaded-simd.wasm',
] as const

export interface SiteDecoding extends LoopOptions {
  acousticScale: number
  beam: number
  maxActive: number
  usePriors: boolean
  frameShift: number
}

export interface SiteManifest {
  format: typeof SITE_FORMAT
  version: typeof SITE_VERSION
  /** Where the site came from (paths and the model's fingerprint), for the page's footer. */
  source: { model: string; fingerprint: string; hmm: string; lm: string; cmvn: string; features: string }
  model: {
    type: string
    /** 'chunks': the whole utterance is one sequence [1, T, D]; 'frames': spliced rows [T, D·(L+R+1)]. */
    input: 'chunks' | 'frames'
    splice: { left: number; right: number }
    featureDim: number
    numClasses: number
  }
  /** The options `ktp features` computed the training features with (its ktp.producer). */
  features: { type: FeatureType; kaldi: Record<string, unknown> }
  cmvn: { normVars: boolean; varFloor: number }
  decoding: SiteDecoding
}
