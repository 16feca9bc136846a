import { RecordBatch } from 'apache-arrow'
import { KtpError } from '../../schemas/errors.js'
import { fromF16 } from '../../schemas/float16.js'
import { getMatrix, getVector } from '../../schemas/utterance.js'

/**
 * One utterance of stored teacher output, and how a student turns it into targets at its own
 * temperature T (DESIGN.md §5: p = softmax(z / T)).
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
    if (lp.width !== numClasses) throw new KtpError('bad-soft', `dense soft targets have ${lp.width} classes, metadata says ${numClasses}`)
    return { kind: 'dense', numClasses, width: lp.width, frames: lp.frames, logp: lp.data, f16 }
  }
  const ids = getMatrix<Uint16Array | Uint32Array>(batch, 'ids')
  return { kind: 'topk', numClasses, width: lp.width, frames: lp.frames, logp: lp.data, f16, ids: ids.data, tail: getVector<Float32Array>(batch, 'tail') }
}

// One row of log-probabilities, widened from f16 once per frame (not once per use).
let scratch = new Float32Array(0)
function rowValues(row: SoftRow, frame: number): Float32Array {
  const w = row.width
  const base = frame * w
  if (!row.f16) return (row.logp as Float32Array).subarray(base, base + w)
  if (scratch.length < w) scratch = new Float32Array(w)
  const src = row.logp as Uint16Array
  for (let i = 0; i < w; i++) scratch[i] = fromF16(src[base + i])
  return scratch
}

/** Write the C target probabilities of `frame` at temperature T into out[off … off+C). */
export function softTargetsAt(row: SoftRow, frame: number, T: number, out: Float32Array, off: number): void {
  const C = row.numClasses
  const w = row.width
  const lp = rowValues(row, frame)
  const invT = 1 / T
  if (row.kind === 'dense') {
    let max = -Infinity
    for (let c = 0; c < C; c++) {
      const v = lp[c] * invT
      if (v > max) max = v
    }
    let sum = 0
    for (let c = 0; c < C; c++) {
      const e = Math.exp(lp[c] * invT - max)
      out[off + c] = e
      sum += e
    }
    const inv = 1 / sum
    for (let c = 0; c < C; c++) out[off + c] *= inv
    return
  }
  const ids = row.ids!
  const base = frame * w
  const tau = Math.max(0, row.tail![frame])
  const rest = C - w
  const tailLog = rest > 0 && tau > 0 ? Math.log(tau / rest) * invT : -Infinity
  let max = tailLog
  for (let j = 0; j < w; j++) {
    const v = lp[j] * invT
    if (v > max) max = v
  }
  const tailP = Math.exp(tailLog - max)
  out.fill(tailP, off, off + C)
  let sum = rest * tailP
  for (let j = 0; j < w; j++) {
    const e = Math.exp(lp[j] * invT - max)
    out[off + ids[base + j]] = e
    sum += e
  }
  const inv = 1 / sum
  for (let c = 0; c < C; c++) out[off + c] *= inv
}
