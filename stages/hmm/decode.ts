/**
 * Token-passing Viterbi beam search over a loop graph, one frame at a time.
 *
 * Per state the decoder keeps the best score and a back-pointer into a word-level traceback
 * (records: word, start frame, previous record). Records are appended to growable typed arrays
 * only for surviving tokens that entered a new word in this frame, so the hot loop allocates no
 * objects; arrays grow by doubling. Pruning per frame: drop tokens worse than best − beam, then
 * keep at most `maxActive` (threshold found by quickselect on a scratch buffer).
 */
import type { HmmGraph } from './graph.js'
import { checkFrameScores, type FrameScores } from './frame-scores.js'
import type { Segment } from './segments.js'
import { doubled } from '../../pipeline/io/doubled.js'

export interface DecodeOptions {
  /** log-score beam relative to the best token (default 16) */
  readonly beam?: number
  /** maximum active states per frame (default 5000; tokens tied with the cut-off score are kept too) */
  readonly maxActive?: number
}

export interface DecodeResult {
  /** the best word sequence, silence removed */
  readonly words: readonly string[]
  /** all segments including silences, for CTM */
  readonly segments: readonly Segment[]
  readonly score: number
  /** false if no final state survived and the best non-final token was used */
  readonly reachedFinal: boolean
  readonly numFrames: number
}

export class Decoder {
  private readonly S: number
  private readonly beam: number
  private readonly maxActive: number
  private score: Float64Array
  private next: Float64Array
  private tb: Int32Array
  private nextTb: Int32Array
  private readonly nextEnter: Uint8Array
  private active: Int32Array
  private nextActive: Int32Array
  private nActive = 0
  private readonly stamp: Int32Array
  private readonly scratch: Float64Array
  private recWord = new Int32Array(1024)
  private recStart = new Int32Array(1024)
  private recPrev = new Int32Array(1024)
  private nRec = 0
  private t = 0

  constructor(
    private readonly g: HmmGraph,
    opts: DecodeOptions = {},
  ) {
    this.S = g.numStates
    this.beam = opts.beam ?? 16
    this.maxActive = opts.maxActive ?? 5000
    if (!(this.beam > 0)) throw new RangeError(`expected --beam > 0, got ${this.beam}`)
    if (!(this.maxActive >= 1)) throw new RangeError(`expected --max-active >= 1, got ${this.maxActive}`)
    const S = this.S
    this.score = new Float64Array(S)
    this.next = new Float64Array(S)
    this.tb = new Int32Array(S)
    this.nextTb = new Int32Array(S)
    this.nextEnter = new Uint8Array(S)
    this.active = new Int32Array(S)
    this.nextActive = new Int32Array(S)
    this.stamp = new Int32Array(S).fill(-1)
    this.scratch = new Float64Array(S)
  }

  /** Number of frames consumed so far. */
  get frames(): number {
    return this.t
  }

  private addRecord(word: number, start: number, prev: number): number {
    if (this.nRec === this.recWord.length) {
      this.recWord = doubled(this.recWord)
      this.recStart = doubled(this.recStart)
      this.recPrev = doubled(this.recPrev)
    }
    this.recWord[this.nRec] = word
    this.recStart[this.nRec] = start
    this.recPrev[this.nRec] = prev
    return this.nRec++
  }

  /** Relaxes a candidate into state d for the frame being built. */
  private relax(d: number, v: number, tb: number, enters: boolean): void {
    if (this.stamp[d] !== this.t) {
      this.stamp[d] = this.t
      this.next[d] = -Infinity
      this.nextActive[this.nActiveNext++] = d
    }
    if (v > this.next[d]!) {
      this.next[d] = v
      this.nextTb[d] = tb
      this.nextEnter[d] = enters ? 1 : 0
    }
  }
  private nActiveNext = 0

  /** Consumes one frame of log-likelihoods (length numPdfs). */
  pushFrame(row: Float32Array): void {
    const g = this.g
    this.nActiveNext = 0
    if (this.t === 0) {
      for (let s = 0; s < this.S; s++) if (g.initLogp[s]! > -Infinity) this.relax(s, g.initLogp[s]!, -1, true)
    } else {
      for (let i = 0; i < this.nActive; i++) {
        const s = this.active[i]!
        const v = this.score[s]!
        const tb = this.tb[s]!
        this.relax(s, v + g.selfLogp[s]!, tb, false)
        for (let a = g.arcStart[s]!; a < g.arcStart[s + 1]!; a++) {
          this.relax(g.arcDest[a]!, v + g.arcLogp[a]!, tb, g.arcEnters[a] === 1)
        }
      }
    }
    // emissions and the best score
    let best = -Infinity
    for (let i = 0; i < this.nActiveNext; i++) {
      const s = this.nextActive[i]!
      const v = this.next[s]! + row[g.pdf[s]!]!
      this.next[s] = v
      if (v > best) best = v
    }
    let thr = best - this.beam
    if (this.nActiveNext > this.maxActive) thr = Math.max(thr, this.kthBest(this.maxActive))
    // keep survivors; create traceback records for word entries
    let n = 0
    for (let i = 0; i < this.nActiveNext; i++) {
      const s = this.nextActive[i]!
      if (this.next[s]! < thr) continue
      this.nextActive[n++] = s
      if (this.nextEnter[s] === 1) this.nextTb[s] = this.addRecord(g.word[s]!, this.t, this.nextTb[s]!)
    }
    // swap buffers
    ;[this.score, this.next] = [this.next, this.score]
    ;[this.tb, this.nextTb] = [this.nextTb, this.tb]
    ;[this.active, this.nextActive] = [this.nextActive, this.active]
    this.nActive = n
    this.t++
  }

  /** Score of the k-th best candidate in `next` (quickselect on a scratch copy). */
  private kthBest(k: number): number {
    const a = this.scratch
    const n = this.nActiveNext
    for (let i = 0; i < n; i++) a[i] = this.next[this.nextActive[i]!]!
    let lo = 0,
      hi = n - 1
    const want = k - 1 // descending order position
    while (lo < hi) {
      const pivot = a[(lo + hi) >> 1]!
      let i = lo,
        j = hi
      while (i <= j) {
        while (a[i]! > pivot) i++
        while (a[j]! < pivot) j--
        if (i <= j) {
          const x = a[i]!
          a[i] = a[j]!
          a[j] = x
          i++
          j--
        }
      }
      if (want <= j) hi = j
      else if (want >= i) lo = i
      else break
    }
    return a[want]!
  }

  /** Best complete hypothesis so far (can be called mid-stream for partial results). */
  result(): DecodeResult {
    const g = this.g
    let best = -Infinity,
      bs = -1,
      bestAny = -Infinity,
      ba = -1
    for (let i = 0; i < this.nActive; i++) {
      const s = this.active[i]!
      const v = this.score[s]!
      if (v > bestAny) {
        bestAny = v
        ba = s
      }
      const f = v + g.finalLogp[s]!
      if (f > best) {
        best = f
        bs = s
      }
    }
    const reachedFinal = bs >= 0
    const end = reachedFinal ? bs : ba
    const recs: number[] = []
    for (let r = end >= 0 ? this.tb[end]! : -1; r >= 0; r = this.recPrev[r]!) recs.push(r)
    recs.reverse()
    const segments: Segment[] = recs.map((r, i) => ({
      label: g.words[this.recWord[r]!]!,
      start: this.recStart[r]!,
      end: i + 1 < recs.length ? this.recStart[recs[i + 1]!]! : this.t,
      silence: this.recWord[r] === g.silenceWord,
    }))
    return {
      words: segments.filter((s) => !s.silence).map((s) => s.label),
      segments,
      score: reachedFinal ? best : bestAny,
      reachedFinal,
      numFrames: this.t,
    }
  }
}

/** Decodes a whole utterance (a thin loop over Decoder.pushFrame). */
export function decode(g: HmmGraph, scores: FrameScores, opts: DecodeOptions = {}): DecodeResult {
  checkFrameScores(scores)
  const dec = new Decoder(g, opts)
  const P = scores.numPdfs
  for (let t = 0; t < scores.numFrames; t++) dec.pushFrame(scores.data.subarray(t * P, (t + 1) * P))
  return dec.result()
}
