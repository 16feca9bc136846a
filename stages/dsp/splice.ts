/**
 * Frame splicing (Kaldi's splice-feats) as plain functions: the splice stage and the browser page
 * of `ktp export --web` (stages/web/) splice with this one code. Frame t becomes frames t−L … t+R
 * side by side, indices clamped to [0, frames−1].
 */
import { KtpError } from '../../schemas/errors.js'

/**
 * Write spliced frame t into `out` at `outOffset` (D·(L+R+1) values): the lazy view for training.
 * `src` is frame-major, `frames` × `dim`.
 */
export function spliceRow(
  src: ArrayLike<number>,
  frames: number,
  dim: number,
  left: number,
  right: number,
  t: number,
  out: Float32Array | number[],
  outOffset = 0,
): void {
  let o = outOffset
  for (let k = -left; k <= right; k++) {
    const s = Math.min(Math.max(t + k, 0), frames - 1) * dim
    for (let j = 0; j < dim; j++) out[o++] = src[s + j]
  }
}

/** All frames spliced: frames × D·(L+R+1), frame-major. */
export function spliceFrames(
  src: ArrayLike<number>,
  frames: number,
  dim: number,
  left: number,
  right: number,
  out?: Float32Array,
): Float32Array {
  const width = dim * (left + right + 1)
  const dst = out ?? new Float32Array(frames * width)
  if (dst.length < frames * width)
    throw new KtpError('bad-shape', `splice output buffer holds ${dst.length} values, needs ${frames * width}`)
  if (src instanceof Float32Array) {
    // Copy whole input rows with TypedArray.set: ~an order of magnitude faster than per value.
    for (let t = 0; t < frames; t++) {
      for (let k = -left; k <= right; k++) {
        const s = Math.min(Math.max(t + k, 0), frames - 1) * dim
        dst.set(src.subarray(s, s + dim), t * width + (k + left) * dim)
      }
    }
  } else {
    for (let t = 0; t < frames; t++) spliceRow(src, frames, dim, left, right, t, dst, t * width)
  }
  return dst
}
