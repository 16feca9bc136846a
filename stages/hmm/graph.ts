/**
 * HMM state graphs, flat and typed: every state emits (its pdf), has a self-loop, and has
 * outgoing arcs in CSR form (arcStart[s] .. arcStart[s+1]). Arc weights already include the
 * HMM forward transition of the source state and, in loop graphs, the scaled LM score, the
 * insertion penalty and the silence branch probability, so the search only adds numbers.
 *
 * An arc flagged in `arcEnters` starts a new word instance at its destination (start states
 * enter implicitly); that is how the decoder knows a repeated word ("one one") is two words even
 * when both instances use the same states.
 */
import { forwardLogp, selfLogp, unitIndex, type TransitionModel, type UnitSet } from './topology.js'
import { pronounce, type Lexicon } from './lexicon.js'
import { lmCell, type BigramLm } from './lm.js'

export interface HmmGraph {
  readonly numStates: number
  readonly pdf: Int32Array
  readonly selfLogp: Float64Array
  readonly arcStart: Int32Array
  readonly arcDest: Int32Array
  readonly arcLogp: Float64Array
  readonly arcEnters: Uint8Array
  readonly initLogp: Float64Array
  readonly finalLogp: Float64Array
  /** state → index into `words` (silence included as a word) */
  readonly word: Int32Array
  /** state → index into units.units */
  readonly unit: Int32Array
  /** state → word-instance node: distinct per transcript position in align graphs */
  readonly wordNode: Int32Array
  /** state → unit-instance node */
  readonly unitNode: Int32Array
  readonly words: readonly string[]
  /** index of the silence word in `words`, -1 if none */
  readonly silenceWord: number
}

export interface SilenceOptions {
  /** silence unit name in the unit set */
  readonly unit: string
  /** probability of taking the optional silence at each place it may occur (default 0.5) */
  readonly prob?: number
}

/** Collects states and arcs, then freezes them into an HmmGraph. */
class Builder {
  pdf: number[] = []
  self: number[] = []
  word: number[] = []
  unit: number[] = []
  wordNode: number[] = []
  unitNode: number[] = []
  arcs: { from: number; to: number; logp: number; enters: boolean }[] = []
  init = new Map<number, number>()
  fin = new Map<number, number>()
  private nWordNodes = 0
  private nUnitNodes = 0
  constructor(
    readonly units: UnitSet,
    readonly tm: TransitionModel,
  ) {}

  /** Adds a chain for one word (its units' states); returns [firstState, lastState]. */
  chain(lex: Lexicon | null, wordName: string, wordId: number): [number, number] {
    const prons = lex ? pronounce(lex, wordName, this.units) : [wordName]
    const wn = this.nWordNodes++
    let first = -1,
      prev = -1
    for (const uname of prons) {
      const u = unitIndex(this.units, uname)
      const un = this.nUnitNodes++
      for (let k = 0; k < this.units.numStates[u]!; k++) {
        const s = this.pdf.length
        const pdf = this.units.pdfOffset[u]! + k
        this.pdf.push(pdf)
        this.self.push(selfLogp(this.tm, pdf))
        this.word.push(wordId)
        this.unit.push(u)
        this.wordNode.push(wn)
        this.unitNode.push(un)
        if (prev >= 0) this.arc(prev, s, this.exit(prev), false)
        else first = s
        prev = s
      }
    }
    return [first, prev]
  }
  exit(s: number): number {
    return forwardLogp(this.tm, this.pdf[s]!)
  }
  arc(from: number, to: number, logp: number, enters: boolean): void {
    if (logp > -Infinity) this.arcs.push({ from, to, logp, enters })
  }
  setMax(m: Map<number, number>, s: number, v: number): void {
    if (v > -Infinity) m.set(s, Math.max(m.get(s) ?? -Infinity, v))
  }
  build(words: readonly string[], silenceWord: number): HmmGraph {
    const S = this.pdf.length
    const arcs = [...this.arcs].sort((a, b) => a.from - b.from)
    const arcStart = new Int32Array(S + 1)
    for (const a of arcs) arcStart[a.from + 1]!++
    for (let s = 0; s < S; s++) arcStart[s + 1]! += arcStart[s]!
    const initLogp = new Float64Array(S).fill(-Infinity)
    const finalLogp = new Float64Array(S).fill(-Infinity)
    for (const [s, v] of this.init) initLogp[s] = v
    for (const [s, v] of this.fin) finalLogp[s] = v
    return {
      numStates: S,
      pdf: Int32Array.from(this.pdf),
      selfLogp: Float64Array.from(this.self),
      arcStart,
      arcDest: Int32Array.from(arcs, (a) => a.to),
      arcLogp: Float64Array.from(arcs, (a) => a.logp),
      arcEnters: Uint8Array.from(arcs, (a) => (a.enters ? 1 : 0)),
      initLogp,
      finalLogp,
      word: Int32Array.from(this.word),
      unit: Int32Array.from(this.unit),
      wordNode: Int32Array.from(this.wordNode),
      unitNode: Int32Array.from(this.unitNode),
      words,
      silenceWord,
    }
  }
}

const SIL = '<sil>'

/**
 * Linear forced-alignment graph for a transcript: w1 w2 … wn, with optional silence at the
 * start, between words and at the end when `silence` is given (each optional silence is taken
 * with probability `prob` and skipped with 1 - prob).
 */
export function buildAlignGraph(
  transcript: readonly string[],
  lex: Lexicon,
  units: UnitSet,
  tm: TransitionModel,
  silence?: SilenceOptions,
): HmmGraph {
  const b = new Builder(units, tm)
  const words: string[] = []
  const wid = new Map<string, number>()
  const idOf = (w: string) => {
    let i = wid.get(w)
    if (i === undefined) {
      i = words.length
      wid.set(w, i)
      words.push(w)
    }
    return i
  }
  const ps = silence ? (silence.prob ?? 0.5) : 0
  const lSil = Math.log(ps),
    lNoSil = Math.log(1 - ps)
  const silChain = () => b.chain(null, silence!.unit, idOf(SIL))
  // "frontier": states (with the log weight to leave them) from which the next element is entered;
  // state -1 stands for the graph start.
  let frontier: [number, number][] = [[-1, 0]]
  const enter = (first: number, extra: number) => {
    for (const [s, w] of frontier) {
      if (s < 0) b.setMax(b.init, first, w + extra)
      else b.arc(s, first, w + b.exit(s) + extra, true)
    }
  }
  const place = () => {
    // optional silence before the next element (or, after the last word, at the end)
    if (!silence) return
    const [f, l] = silChain()
    enter(f, lSil)
    frontier = frontier.map(([s, w]) => [s, w + lNoSil] as [number, number]).concat([[l, 0]])
  }
  transcript.forEach((w) => {
    place()
    const [f, l] = b.chain(lex, w, idOf(w))
    enter(f, 0)
    frontier = [[l, 0]]
  })
  place()
  for (const [s, w] of frontier) if (s >= 0) b.setMax(b.fin, s, w + b.exit(s))
  return b.build(words, wid.get(SIL) ?? -1)
}

export interface LoopGraphOptions {
  readonly lm: BigramLm
  /** multiplies LM log-probabilities (default 1) */
  readonly lmScale?: number
  /** added (in log domain) at every word entry; negative values discourage insertions (default 0) */
  readonly insertionPenalty?: number
  /** optional silence between words and at both ends (not part of the LM history) */
  readonly silence?: SilenceOptions
}

/**
 * Loop graph for decoding: any sequence of LM vocabulary words. Each word has one chain; the
 * bigram needs the previous word, which the chain's identity provides. The optional silence after
 * word u is a separate copy per u (and one for the start) so that P(v | u) still applies after a
 * pause. With a phone lexicon of one phone per "word" this is the phone loop.
 */
export function buildLoopGraph(lex: Lexicon, units: UnitSet, tm: TransitionModel, opts: LoopGraphOptions): HmmGraph {
  const { lm } = opts
  const scale = opts.lmScale ?? 1
  const pen = opts.insertionPenalty ?? 0
  const V = lm.vocab.length
  const b = new Builder(units, tm)
  const words = [...lm.vocab]
  const silenceWord = opts.silence ? words.push(SIL) - 1 : -1
  const ps = opts.silence ? (opts.silence.prob ?? 0.5) : 0
  const lSil = Math.log(ps),
    lNoSil = Math.log(1 - ps)
  const chains = lm.vocab.map((w, i) => b.chain(lex, w, i))
  const enterScore = (h: number, v: number) => scale * lmCell(lm, h, v) + pen
  // silence copies: index 0 for history <s>, 1+u after word u
  const sil = opts.silence ? Array.from({ length: V + 1 }, () => b.chain(null, opts.silence!.unit, silenceWord)) : []
  // start
  for (let v = 0; v < V; v++) b.setMax(b.init, chains[v]![0], lNoSil + enterScore(-1, v))
  if (opts.silence) b.setMax(b.init, sil[0]![0], lSil)
  // leaving a word u (history u) or a silence copy (history h)
  const leave = (from: number, h: number, viaSilProb: number) => {
    const e = b.exit(from)
    for (let v = 0; v < V; v++) b.arc(from, chains[v]![0], e + viaSilProb + enterScore(h, v), true)
    b.setMax(b.fin, from, e + viaSilProb + scale * lmCell(lm, h, V))
  }
  for (let u = 0; u < V; u++) {
    const last = chains[u]![1]
    leave(last, u, lNoSil)
    if (opts.silence) b.arc(last, sil[u + 1]![0], b.exit(last) + lSil, true)
  }
  if (opts.silence) for (let h = -1; h < V; h++) leave(sil[h + 1]![1], h, 0)
  return b.build(words, silenceWord)
}

/** Fewest frames any complete path needs (BFS over arcs; -1 if no final state is reachable). */
export function minPathFrames(g: HmmGraph): number {
  const dist = new Int32Array(g.numStates).fill(-1)
  const queue = new Int32Array(g.numStates)
  let qh = 0,
    qt = 0
  for (let s = 0; s < g.numStates; s++)
    if (g.initLogp[s]! > -Infinity) {
      dist[s] = 1
      queue[qt++] = s
    }
  let best = -1
  while (qh < qt) {
    const s = queue[qh++]!
    if (g.finalLogp[s]! > -Infinity && (best < 0 || dist[s]! < best)) best = dist[s]!
    for (let a = g.arcStart[s]!; a < g.arcStart[s + 1]!; a++) {
      const d = g.arcDest[a]!
      if (dist[d]! < 0) {
        dist[d] = dist[s]! + 1
        queue[qt++] = d
      }
    }
  }
  return best
}
