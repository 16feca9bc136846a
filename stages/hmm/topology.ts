/**
 * HMM topology: every unit (a digit word, or a phone) is a left-to-right chain of N emitting
 * states, each with a self-loop and a forward transition. Each state owns one pdf (output column
 * of the acoustic model); pdf ids are laid out unit by unit: pdf = offset[unit] + stateIndex.
 *
 * Transition probabilities are per pdf (Kaldi's "per-state transition model"): p(self) and
 * p(forward) = 1 - p(self). The default 0.5/0.5 is the usual flat start; `reestimateTransitions`
 * re-counts them from frame alignments.
 */

export class TopologyError extends Error {
  override name = 'TopologyError'
}

export interface UnitSet {
  readonly units: readonly string[]
  /** states per unit, same order as `units` */
  readonly numStates: Int32Array
  /** first pdf id of each unit */
  readonly pdfOffset: Int32Array
  readonly numPdfs: number
  readonly index: ReadonlyMap<string, number>
}

/**
 * Builds the unit inventory. `states` is a single count for all units or a per-unit override
 * (e.g. 3 for phones, 1 for a short-pause unit).
 */
export function makeUnitSet(units: readonly string[], states: number | ((unit: string) => number) = 3): UnitSet {
  const n = units.length
  const numStates = new Int32Array(n)
  const pdfOffset = new Int32Array(n)
  const index = new Map<string, number>()
  let pdf = 0
  for (let u = 0; u < n; u++) {
    const name = units[u]!
    if (index.has(name)) throw new TopologyError(`unit "${name}" listed twice`)
    const k = typeof states === 'number' ? states : states(name)
    if (!Number.isInteger(k) || k < 1) throw new TopologyError(`expected states per unit >= 1 for "${name}", got ${k}`)
    index.set(name, u)
    numStates[u] = k
    pdfOffset[u] = pdf
    pdf += k
  }
  return { units: [...units], numStates, pdfOffset, numPdfs: pdf, index }
}

/** Unit index or a clear error. */
export function unitIndex(set: UnitSet, unit: string): number {
  const u = set.index.get(unit)
  if (u === undefined) throw new TopologyError(`unknown unit "${unit}"`)
  return u
}

/** Per-pdf self-loop probabilities; forward = 1 - self. */
export interface TransitionModel {
  readonly selfLoop: Float64Array
}

export function uniformTransitions(numPdfs: number, selfLoop = 0.5): TransitionModel {
  if (!(selfLoop > 0 && selfLoop < 1))
    throw new TopologyError(`expected 0 < self-loop probability < 1, got ${selfLoop}`)
  return { selfLoop: new Float64Array(numPdfs).fill(selfLoop) }
}

export const selfLogp = (tm: TransitionModel, pdf: number): number => Math.log(tm.selfLoop[pdf]!)
export const forwardLogp = (tm: TransitionModel, pdf: number): number => Math.log(1 - tm.selfLoop[pdf]!)

/**
 * Re-estimates self-loop probabilities by counting, over state alignments, how often a frame in a
 * state is followed by the same state (stay) or not (leave; the last frame of an utterance leaves
 * too, through the final transition). Both counts get `prior` pseudo-counts, and the result is
 * clamped to [floor, 1 - floor], so unseen pdfs keep 0.5 and no transition becomes impossible.
 * Alignments are sequences of GRAPH STATE ids mapped through `pdfOfState` (so that two adjacent
 * occurrences of the same pdf are still told apart); pass the identity if states are pdfs.
 */
export function reestimateTransitions(
  numPdfs: number,
  alignments: Iterable<{ states: Int32Array; pdfOfState: Int32Array }>,
  opts: { prior?: number; floor?: number } = {},
): TransitionModel {
  const prior = opts.prior ?? 1
  const floor = opts.floor ?? 0.01
  const stay = new Float64Array(numPdfs)
  const leave = new Float64Array(numPdfs)
  for (const { states, pdfOfState } of alignments) {
    for (let t = 0; t < states.length; t++) {
      const pdf = pdfOfState[states[t]!]!
      if (t + 1 < states.length && states[t + 1] === states[t]) stay[pdf]!++
      else leave[pdf]!++
    }
  }
  const selfLoop = new Float64Array(numPdfs)
  for (let p = 0; p < numPdfs; p++) {
    const v = (stay[p]! + prior) / (stay[p]! + leave[p]! + 2 * prior)
    selfLoop[p] = Math.min(1 - floor, Math.max(floor, v))
  }
  return { selfLoop }
}
