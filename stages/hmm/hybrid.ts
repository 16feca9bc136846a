/**
 * The hybrid-decoding choices `ktp decode` makes, as plain functions so the browser page of
 * `ktp export --web` (stages/web/) makes exactly the same ones: which priors divide the
 * posteriors, and the loop graph built from the HMM, the LM and the decoding options.
 */
import { buildLoopGraph, type HmmGraph } from './graph.js'
import type { BigramLm } from './lm.js'
import type { HmmModel } from './model-json.js'

export interface LoopOptions {
  lmScale: number
  insertionPenalty: number
  optionalSilence: boolean
  silenceProb: number
}

/** The decoding loop: any sequence of lexicon words under the LM, with optional silence if the HMM has one. */
export function hybridLoopGraph(m: HmmModel, lm: BigramLm, o: LoopOptions): HmmGraph {
  return buildLoopGraph(m.lexicon, m.units, m.transitions, {
    lm,
    lmScale: o.lmScale,
    insertionPenalty: o.insertionPenalty,
    silence: o.optionalSilence && m.silence !== null ? { unit: m.silence, prob: o.silenceProb } : undefined,
  })
}

/** The priors that divide the posteriors: the HMM's, or all ones (no priors, or --no-use-priors). */
export function hybridPriors(m: HmmModel, usePriors: boolean): { priors: Float64Array; flat: boolean } {
  const usable = usePriors && m.priors !== null
  return { priors: usable ? m.priors! : new Float64Array(m.units.numPdfs).fill(1), flat: !usable }
}
