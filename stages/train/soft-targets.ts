import type { RecordBatch } from 'apache-arrow'
import { KtpError } from '../../schemas/errors.js'
import { fromF16 } from '../../schemas/float16.js'
import { getMatrix, getVector } from '../../schemas/utterance.js'

/**
 * One utterance of stored teacher output, and how a student turns it into targets at its own
 * temperature T (docs/ARCHITECTURE.md §5: p = softmax(z / T)).
 *
 * Files store log-probabilities at T = 1 (log p = z − logsumexp z); since softmax is shift
 * invariant, softmax(log p / T) = softmax(z / T) exactly, so any T can be chosen after the fact.
 * Top-k files keep the k largest log p and the tail mass τ = 1 − Σ_topk p. At T = 1 the targets are
 * exact for the listed classes; the other C − k classes share τ equally (log p = log(τ / (C − k))),
 * which is also what T ≠ 1 is applied to: p_T ∝ exp(log p / T) over all C classes, then normalised.
 */
export interface SoftRow {
  kind: 'dense' | 'topk'
  numClasses: number
  /** k for top-k, numClasses for dense. */
  width: number
  frames: number
  /** f16 files keep raw half bits (Uint16Array); f32 files a Float32Array. */
  logp: Float32Array | Uint16Array
  f16: boolean
  ids?: Uint16Array | Uint32Array
  tail?: Float32Array
}

export function softRow(batch: RecordBatch, kind: 'soft-dense' | 'soft-topk', numClasses: number): SoftRow {
  const lp = getMatrix<Float32Array | Uint16Array>(batch, 'logp')
  const f16 = lp.data instanceof Uint16Array
  if (kind === 'soft-dense') {
    if (lp.width !== numClasses)
      throw new KtpError('bad-soft', `dense soft targets have ${lp.width} classes, metadata says ${numClasses}`)
    return { kind: 'dense', numClasses, width: lp.width, frames: lp.frames, logp: lp.data, f16 }
  }
  const ids = getMatrix<Uint16Array | Uint32Array>(batch, 'ids')
  // a class id ≥ C would land in another frame's targets (dense) or outside the logits (sparse)
  const d = ids.data
  const max = d instanceof Uint16Array ? maxU16(d) : maxU32(d)
  if (d.length > 0 && max >= numClasses)
    throw new KtpError('bad-soft', `top-k soft targets name class ${max}, metadata says ${numClasses} classes`)
  return {
    kind: 'topk',
    numClasses,
    width: lp.width,
    frames: lp.frames,
    logp: lp.data,
    f16,
    ids: ids.data,
    tail: getVector<Float32Array>(batch, 'tail'),
  }
}

// One loop per array type: a loop over `Uint16Array | Uint32Array` stays polymorphic and runs
// several times slower, and softRow scans every id of every utterance.
function maxU16(d: Uint16Array): number {
  let max = 0
  for (let i = 0; i < d.length; i++) if (d[i] > max) max = d[i]
  return max
}

function maxU32(d: Uint32Array): number {
  let max = 0
  for (let i = 0; i < d.length; i++) if (d[i] > max) max = d[i]
  return max
}

// Per-frame scratch of the top-k path (grown on demand; one thread, no re-entrancy).
let scratch = new Float64Array(1024)
let topProbs = new Float32Array(1024)

// exp(v / T) for every half-precision value v (a 512 KB table per temperature, a few kept): f16
// rows then cost one lookup per class instead of one Math.exp. Beside it the same values rounded
// to float32 (256 KB), which is what a target row stores before it is normalised.
interface ExpTable {
  f64: Float64Array
  f32: Float32Array
}
const expTables = new Map<number, ExpTable>()
// the table of the last temperature asked for: feeders ask once per frame with the same T
let lastT = Number.NaN
let lastTable: ExpTable = { f64: new Float64Array(0), f32: new Float32Array(0) }
function expTableF16(T: number): ExpTable {
  if (T === lastT) return lastTable
  let tab = expTables.get(T)
  if (!tab) {
    if (expTables.size >= 4) expTables.clear()
    const f64 = new Float64Array(65536)
    const invT = 1 / T
    for (let h = 0; h < 65536; h++) f64[h] = Math.exp(fromF16(h) * invT)
    tab = { f64, f32: Float32Array.from(f64) }
    expTables.set(T, tab)
  }
  lastT = T
  lastTable = tab
  return tab
}

/**
 * Dense targets of one frame: softmax(log p / T) over the C classes into out[off … off+C).
 * Log-probabilities are ≤ 0 with a maximum ≥ −log C, so for any usual T the terms exp(log p / T)
 * neither overflow nor underflow where it matters (a class whose term underflows is 0 in float32
 * after normalising anyway) and no max needs subtracting: one pass of exp + sum, one of scaling.
 * Rows where that does not hold (a sum outside [1e-200, 1e300]: not log-probabilities, or a tiny T)
 * take the max-subtracted route.
 */
function denseTargetsAt(row: SoftRow, frame: number, T: number, out: Float32Array, off: number): void {
  const C = row.numClasses
  const base = frame * C
  if (row.f16) {
    const src = row.logp as Uint16Array
    const tab = expTableF16(T)
    const pairs = LITTLE_ENDIAN && (C & 1) === 0 && (src.byteOffset & 3) === 0 ? pairsView(src) : null
    const sum = pairs ? sumRowF16Pairs(pairs, base >> 1, C, tab.f64) : sumRowF16(src, base, C, tab.f64)
    if (!(sum >= 1e-200 && sum <= 1e300)) denseTargetsShifted(row, frame, T, out, off)
    else if (pairs) storeScaledF16Pairs(pairs, base >> 1, C, tab.f32, 1 / sum, out, off)
    else storeScaledF16(src, base, C, tab.f32, 1 / sum, out, off)
    return
  }
  const src = row.logp as Float32Array
  const invT = 1 / T
  let sum = 0
  for (let c = 0; c < C; c++) {
    const e = Math.exp(src[base + c] * invT)
    out[off + c] = e
    sum += e
  }
  if (!(sum >= 1e-200 && sum <= 1e300)) {
    denseTargetsShifted(row, frame, T, out, off)
    return
  }
  scaleRow(out, off, C, 1 / sum)
}

/*
 * The f16 row in two passes over the source, none over the output until it is final: the sum of
 * exp(log p / T) from the float64 table, then each class's float32 term times 1/sum, stored once.
 * That is the value the earlier store-then-scale form gave (the float32 term, times 1/sum, rounded
 * to float32), so the same bits, without writing and re-reading the 4 KB row (a few per cent: it
 * is the lookups and adds, not the stores, that cost).
 * The sum keeps one order: four partial sums, class c into sum c mod 4 (the loop is bound by its
 * dependency on the sum, not by the lookups; 1.4x over one sum).
 */

function sumRowF16(src: Uint16Array, base: number, C: number, tab: Float64Array): number {
  let s0 = 0
  let s1 = 0
  let s2 = 0
  let s3 = 0
  let c = 0
  for (; c + 3 < C; c += 4) {
    s0 += tab[src[base + c]]
    s1 += tab[src[base + c + 1]]
    s2 += tab[src[base + c + 2]]
    s3 += tab[src[base + c + 3]]
  }
  for (; c < C; c++) s0 += tab[src[base + c]]
  return s0 + s1 + s2 + s3
}

function storeScaledF16(
  src: Uint16Array,
  base: number,
  C: number,
  tab: Float32Array,
  k: number,
  out: Float32Array,
  off: number,
): void {
  for (let c = 0; c < C; c++) out[off + c] = tab[src[base + c]] * k
}

// Two half-precision values per 32-bit load (little-endian hosts): a view of the last f16 buffer
// asked for, kept since feeders ask for ~20 frames of one utterance in a row.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1
let pairsOf: Uint16Array | null = null
let pairs: Uint32Array = new Uint32Array(0)
function pairsView(src: Uint16Array): Uint32Array {
  if (src !== pairsOf) {
    pairs = new Uint32Array(src.buffer, src.byteOffset, src.length >> 1)
    pairsOf = src
  }
  return pairs
}

/**
 * sumRowF16 reading the row two values per load from its 32-bit view w, from pair i (half the
 * loads and bounds checks of 16-bit reads; 1.3x), eight classes a step, class c still into partial
 * sum c mod 4. Needs an even C, so that every row starts on a pair.
 */
function sumRowF16Pairs(w: Uint32Array, i: number, C: number, tab: Float64Array): number {
  let s0 = 0
  let s1 = 0
  let s2 = 0
  let s3 = 0
  let c = 0
  for (; c + 7 < C; c += 8, i += 4) {
    const a = w[i]
    const b = w[i + 1]
    const x = w[i + 2]
    const y = w[i + 3]
    s0 += tab[a & 0xffff]
    s1 += tab[a >>> 16]
    s2 += tab[b & 0xffff]
    s3 += tab[b >>> 16]
    s0 += tab[x & 0xffff]
    s1 += tab[x >>> 16]
    s2 += tab[y & 0xffff]
    s3 += tab[y >>> 16]
  }
  if (c + 3 < C) {
    const a = w[i]
    const b = w[i + 1]
    s0 += tab[a & 0xffff]
    s1 += tab[a >>> 16]
    s2 += tab[b & 0xffff]
    s3 += tab[b >>> 16]
    c += 4
    i += 2
  }
  // C is even: at most one pair is left
  if (c < C) {
    const a = w[i]
    s0 += tab[a & 0xffff]
    s0 += tab[a >>> 16]
  }
  return s0 + s1 + s2 + s3
}

function storeScaledF16Pairs(
  w: Uint32Array,
  i: number,
  C: number,
  tab: Float32Array,
  k: number,
  out: Float32Array,
  off: number,
): void {
  let o = off
  const end = off + C
  for (; o + 7 < end; o += 8, i += 4) {
    const a = w[i]
    const b = w[i + 1]
    const x = w[i + 2]
    const y = w[i + 3]
    out[o] = tab[a & 0xffff] * k
    out[o + 1] = tab[a >>> 16] * k
    out[o + 2] = tab[b & 0xffff] * k
    out[o + 3] = tab[b >>> 16] * k
    out[o + 4] = tab[x & 0xffff] * k
    out[o + 5] = tab[x >>> 16] * k
    out[o + 6] = tab[y & 0xffff] * k
    out[o + 7] = tab[y >>> 16] * k
  }
  for (; o < end; o += 2, i++) {
    const a = w[i]
    out[o] = tab[a & 0xffff] * k
    out[o + 1] = tab[a >>> 16] * k
  }
}

/** out[off … off+n) *= k, unrolled by eight (the second pass of the float32 rows). */
function scaleRow(out: Float32Array, off: number, n: number, k: number): void {
  let c = 0
  // eight rather than four: 1.07x on the dense soft-read targets (fewer loop-control steps per store)
  for (; c + 7 < n; c += 8) {
    const o = off + c
    out[o] *= k
    out[o + 1] *= k
    out[o + 2] *= k
    out[o + 3] *= k
    out[o + 4] *= k
    out[o + 5] *= k
    out[o + 6] *= k
    out[o + 7] *= k
  }
  for (; c < n; c++) out[off + c] *= k
}

/** The general form, exp(log p / T − max): for rows that are not proper log-probabilities. */
function denseTargetsShifted(row: SoftRow, frame: number, T: number, out: Float32Array, off: number): void {
  const C = row.numClasses
  const base = frame * C
  const invT = 1 / T
  const f16 = row.f16
  const lp = row.logp
  let max = -Infinity
  for (let c = 0; c < C; c++) {
    const v = (f16 ? fromF16(lp[base + c]) : lp[base + c]) * invT
    if (v > max) max = v
  }
  let sum = 0
  for (let c = 0; c < C; c++) {
    const e = Math.exp((f16 ? fromF16(lp[base + c]) : lp[base + c]) * invT - max)
    out[off + c] = e
    sum += e
  }
  const inv = 1 / sum
  for (let c = 0; c < C; c++) out[off + c] *= inv
}

/**
 * Top-k targets of one frame at temperature T, sparsely: the probabilities of the k listed classes
 * into probs[off … off+k) (their class ids into ids[off …], when `ids` is given), and, returned, the
 * probability of each of the C − k unlisted classes (the tail mass τ shared equally at T = 1, then
 * softened with the rest: p_T ∝ exp(log p / T) over all C classes). These are exactly the values
 * softTargetsAt writes densely. O(k) per frame.
 */
export function topkTargetsAt(
  row: SoftRow,
  frame: number,
  T: number,
  ids: Int32Array | null,
  probs: Float32Array,
  off: number,
): number {
  const C = row.numClasses
  const w = row.width
  const base = frame * w
  const invT = 1 / T
  const tau = Math.max(0, row.tail![frame])
  const rest = C - w
  const tailLog = rest > 0 && tau > 0 ? Math.log(tau / rest) * invT : -Infinity
  if (scratch.length < w) scratch = new Float64Array(w)
  if (ids) {
    const src = row.ids!
    for (let j = 0; j < w; j++) ids[off + j] = src[base + j]
  }
  if (row.f16) {
    // exp(log p / T) from the table, no max subtracted (log-probabilities: see denseTargetsAt)
    const tab = expTableF16(T).f64
    const src = row.logp as Uint16Array
    const tailP = Math.exp(tailLog)
    let sum = rest * tailP
    for (let j = 0; j < w; j++) {
      const e = tab[src[base + j]]
      scratch[j] = e
      sum += e
    }
    if (sum >= 1e-200 && sum <= 1e300) {
      const inv = 1 / sum
      for (let j = 0; j < w; j++) probs[off + j] = scratch[j] * inv
      return tailP * inv
    }
  }
  // general form: exp(log p / T − max)
  const lp = row.logp
  const f16 = row.f16
  let max = tailLog
  for (let j = 0; j < w; j++) {
    const v = (f16 ? fromF16(lp[base + j]) : lp[base + j]) * invT
    scratch[j] = v
    if (v > max) max = v
  }
  const tailP = Math.exp(tailLog - max)
  let sum = rest * tailP
  for (let j = 0; j < w; j++) {
    const e = Math.exp(scratch[j] - max)
    scratch[j] = e
    sum += e
  }
  const inv = 1 / sum
  for (let j = 0; j < w; j++) probs[off + j] = scratch[j] * inv
  return tailP * inv
}

/** Write the C target probabilities of `frame` at temperature T into out[off … off+C). */
export function softTargetsAt(row: SoftRow, frame: number, T: number, out: Float32Array, off: number): void {
  if (row.kind === 'dense') {
    denseTargetsAt(row, frame, T, out, off)
    return
  }
  const w = row.width
  if (topProbs.length < w) topProbs = new Float32Array(w)
  const r = topkTargetsAt(row, frame, T, null, topProbs, 0)
  out.fill(r, off, off + row.numClasses)
  const ids = row.ids!
  const base = frame * w
  for (let j = 0; j < w; j++) out[off + ids[base + j]] = topProbs[j]
}
