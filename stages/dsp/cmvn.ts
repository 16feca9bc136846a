/**
 * Applying CMVN statistics as plain functions: `ktp cmvn apply` and the browser page of
 * `ktp export --web` (stages/web/) normalise with this one code, (x − mean)·scale.
 */

export interface CmvnAccum {
  count: number
  sum: Float64Array
  sumsq: Float64Array
}

export interface Normalizer {
  mean: Float64Array
  scale: Float64Array
}

export function normalizer(acc: CmvnAccum, normVars: boolean, varFloor: number): Normalizer {
  const dim = acc.sum.length
  const mean = new Float64Array(dim)
  const scale = new Float64Array(dim).fill(1)
  if (acc.count === 0) return { mean, scale }
  for (let j = 0; j < dim; j++) {
    mean[j] = acc.sum[j] / acc.count
    if (normVars) scale[j] = 1 / Math.sqrt(Math.max(acc.sumsq[j] / acc.count - mean[j] * mean[j], varFloor))
  }
  return { mean, scale }
}

/** (x − mean)·scale for every frame; writes `out` (a new Float32Array by default). */
export function applyCmvn(
  src: ArrayLike<number>,
  frames: number,
  dim: number,
  n: Normalizer,
  out = new Float32Array(frames * dim),
): Float32Array {
  for (let t = 0; t < frames; t++) {
    const o = t * dim
    for (let j = 0; j < dim; j++) out[o + j] = (src[o + j] - n.mean[j]) * n.scale[j]
  }
  return out
}
