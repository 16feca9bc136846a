/**
 * Forced alignment: exact Viterbi over all states of a (small, linear) graph, with a full
 * frame × state back-pointer table — for a transcript graph of a few hundred states this is
 * cheap and avoids any pruning error in the training labels.
 */
import type { HmmGraph } from './graph.js'
import { minPathFrames } from './graph.js'
import { checkFrameScores, type FrameScores } from './frame-scores.js'
import type { Segment } from './segments.js'

export class AlignmentError extends Error {
  override name = 'AlignmentError'
  constructor(
    readonly code: 'too-short' | 'no-path',
    message: string,
    readonly numFrames: number,
    readonly minFrames: number,
  ) {
    super(message)
  }
}

export interface AlignResult {
  /** graph state per frame */
  readonly states: Int32Array
  /** pdf per frame (the frame labels for training) */
  readonly pdfs: Int32Array
  readonly logLik: number
  readonly words: readonly Segment[]
  readonly units: readonly Segment[]
}

/** Cuts a per-frame node sequence into segments where the node changes. */
function segmentsOf(
  states: Int32Array,
  node: Int32Array,
  label: (s: number) => string,
  sil: (s: number) => boolean,
): Segment[] {
  const out: Segment[] = []
  let start = 0
  for (let t = 1; t <= states.length; t++) {
    if (t === states.length || node[states[t]!] !== node[states[t - 1]!]) {
      const s = states[start]!
      out.push({ label: label(s), start, end: t, silence: sil(s) })
      start = t
    }
  }
  return out
}

export function viterbiAlign(g: HmmGraph, scores: FrameScores, unitNames?: readonly string[]): AlignResult {
  checkFrameScores(scores)
  const T = scores.numFrames
  const S = g.numStates
  const P = scores.numPdfs
  const minFrames = minPathFrames(g)
  if (minFrames < 0) throw new AlignmentError('no-path', 'the alignment graph has no complete path', T, minFrames)
  if (T < minFrames) {
    throw new AlignmentError(
      'too-short',
      `utterance has ${T} frames but the transcript needs at least ${minFrames}`,
      T,
      minFrames,
    )
  }
  const d = scores.data
  let prev = new Float64Array(S)
  let cur = new Float64Array(S)
  const bp = new Int32Array(T * S)
  for (let s = 0; s < S; s++) prev[s] = g.initLogp[s]! + d[g.pdf[s]!]!
  bp.fill(-1, 0, S)
  for (let t = 1; t < T; t++) {
    cur.fill(-Infinity)
    const row = t * S
    for (let s = 0; s < S; s++) {
      const v = prev[s]!
      if (v === -Infinity) continue
      const self = v + g.selfLogp[s]!
      if (self > cur[s]!) {
        cur[s] = self
        bp[row + s] = s
      }
      for (let a = g.arcStart[s]!; a < g.arcStart[s + 1]!; a++) {
        const dst = g.arcDest[a]!
        const c = v + g.arcLogp[a]!
        if (c > cur[dst]!) {
          cur[dst] = c
          bp[row + dst] = s
        }
      }
    }
    const off = t * P
    for (let s = 0; s < S; s++) if (cur[s]! > -Infinity) cur[s]! += d[off + g.pdf[s]!]!
    ;[prev, cur] = [cur, prev]
  }
  let best = -Infinity,
    bs = -1
  for (let s = 0; s < S; s++) {
    const v = prev[s]! + g.finalLogp[s]!
    if (v > best) {
      best = v
      bs = s
    }
  }
  if (bs < 0) throw new AlignmentError('no-path', `no path through the graph in ${T} frames`, T, minFrames)
  const states = new Int32Array(T)
  for (let t = T - 1, s = bs; t >= 0; t--) {
    states[t] = s
    s = bp[t * S + s]!
  }
  const pdfs = Int32Array.from(states, (s) => g.pdf[s]!)
  const isSil = (s: number) => g.word[s] === g.silenceWord
  return {
    states,
    pdfs,
    logLik: best,
    words: segmentsOf(states, g.wordNode, (s) => g.words[g.word[s]!]!, isSil),
    units: segmentsOf(states, g.unitNode, (s) => (unitNames ? unitNames[g.unit[s]!]! : String(g.unit[s])), isSil),
  }
}
