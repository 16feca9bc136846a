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
// rows then cost one lookup per class instead of one Math.exp.
const expTables = new Map<number, Float64Array>()
// the table of the last temperature asked for: feeders ask once per frame with the same T
let lastT = Number.NaN
let lastTable: Float64Array = new Float64Array(0)
function expTableF16(T: number): Float64Array {
  if (T === lastT) return lastTable
  let tab = expTables.get(T)
  if (!tab) {
    if (expTables.size >= 4) expTables.clear()
    tab = new Float64Array(65536)
    const invT = 1 / T
    for (let h = 0; h < 65536; h++) tab[h] = Math.exp(fromF16(h) * invT)
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
  let sum = 0
  if (row.f16) {
    const src = row.logp as Uint16Array
    sum =
      (C & 1) === 0 && (src.byteOffset & 3) === 0
        ? expRowF16Pairs(src, base, C, T, out, off)
        : expRowF16(src, base, C, T, out, off)
  } else {
    const src = row.logp as Float32Array
    const invT = 1 / T
    for (let c = 0; c < C; c++) {
      const e = Math.exp(src[base + c] * invT)
      out[off + c] = e
      sum += e
    }
  }
  if (!(sum >= 1e-200 && sum <= 1e300)) {
    denseTargetsShifted(row, frame, T, out, off)
    return
  }
  scaleRow(out, off, C, 1 / sum)
}

/**
 * exp(log p / T) of the C half-precision values src[base …] into out[off …], returning their sum.
 * Unrolled by four with four partial sums: the loop is bound by its dependency on `sum`, not by
 * the lookups, and this form ran 1.4x faster (issue 16, dense soft-read). The order of the
 * additions changes the float64 sum by ~1e-16, below float32 output precision; expRowF16Pairs
 * keeps exactly this order.
 */
function expRowF16(src: Uint16Array, base: number, C: number, T: number, out: Float32Array, off: number): number {
  const tab = expTableF16(T)
  let s0 = 0
  let s1 = 0
  let s2 = 0
  let s3 = 0
  let c = 0
  for (; c + 3 < C; c += 4) {
    const e0 = tab[src[base + c]]
    const e1 = tab[src[base + c + 1]]
    const e2 = tab[src[base + c + 2]]
    const e3 = tab[src[base + c + 3]]
    out[off + c] = e0
    out[off + c + 1] = e1
    out[off + c + 2] = e2
    out[off + c + 3] = e3
    s0 += e0
    s1 += e1
    s2 += e2
    s3 += e3
  }
  for (; c < C; c++) {
    const e = tab[src[base + c]]
    out[off + c] = e
    s0 += e
  }
  return s0 + s1 + s2 + s3
}

// Two half-precision values per 32-bit load (little-endian hosts): a view of the last f16 buffer
// asked for, kept since feeders ask for ~20 frames of one utterance in a row.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1
let pairsOf: Uint16Array | null = null
let pairs: Uint32Array = new Uint32Array(0)

/**
 * expRowF16 reading the row two values per load (half the loads and bounds checks of the 16-bit
 * reads; 1.3x on the dense targets of the soft-read feeder), with the same values and the same order of additions,
 * so the same bits. Needs src 4-byte aligned and an even C, so that every row starts on a pair.
 */
function expRowF16Pairs(src: Uint16Array, base: number, C: number, T: number, out: Float32Array, off: number): number {
  if (!LITTLE_ENDIAN) return expRowF16(src, base, C, T, out, off)
  if (src !== pairsOf) {
    pairs = new Uint32Array(src.buffer, src.byteOffset, src.length >> 1)
    pairsOf = src
  }
  const w = pairs
  const tab = expTableF16(T)
  let s0 = 0
  let s1 = 0
  let s2 = 0
  let s3 = 0
  let c = 0
  let i = base >> 1
  // eight classes a step (four loads), class c still into partial sum c mod 4: 1.1x over four
  for (; c + 7 < C; c += 8, i += 4) {
    const a = w[i]
    const b = w[i + 1]
    const x = w[i + 2]
    const y = w[i + 3]
    const e0 = tab[a & 0xffff]
    const e1 = tab[a >>> 16]
    const e2 = tab[b & 0xffff]
    const e3 = tab[b >>> 16]
    const e4 = tab[x & 0xffff]
    const e5 = tab[x >>> 16]
    const e6 = tab[y & 0xffff]
    const e7 = tab[y >>> 16]
    const o = off + c
    out[o] = e0
    out[o + 1] = e1
    out[o + 2] = e2
    out[o + 3] = e3
    out[o + 4] = e4
    out[o + 5] = e5
    out[o + 6] = e6
    out[o + 7] = e7
    s0 += e0
    s1 += e1
    s2 += e2
    s3 += e3
    s0 += e4
    s1 += e5
    s2 += e6
    s3 += e7
  }
  if (c + 3 < C) {
    const a = w[i]
    const b = w[i + 1]
    const e0 = tab[a & 0xffff]
    const e1 = tab[a >>> 16]
    const e2 = tab[b & 0xffff]
    const e3 = tab[b >>> 16]
    out[off + c] = e0
    out[off + c + 1] = e1
    out[off + c + 2] = e2
    out[off + c + 3] = e3
    s0 += e0
    s1 += e1
    s2 += e2
    s3 += e3
    c += 4
  }
  for (; c < C; c++) {
    const e = tab[src[base + c]]
    out[off + c] = e
    s0 += e
  }
  return s0 + s1 + s2 + s3
}

/** out[off … off+n) *= k, unrolled by eight (the second pass of denseTargetsAt). */
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
    const tab = expTableF16(T)
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
