/**
 * Deterministic parameter initialisation. Every parameter's values depend only on (model seed,
 * parameter name), not on creation order or backend, so two workers, a resumed run and a test on
 * another backend all start from bit-identical weights.
 */

/** mulberry32: small, fast, good enough for initialisation; same sequence on every platform. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** FNV-1a over the name, mixed with the seed: one independent stream per parameter. */
export function paramSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

/** Glorot/Xavier uniform for a [fanIn, fanOut] matrix: U(-l, l), l = sqrt(6 / (fanIn + fanOut)). */
export function glorotUniform(fanIn: number, fanOut: number, seed: number): Float32Array {
  const limit = Math.sqrt(6 / (fanIn + fanOut))
  const r = mulberry32(seed)
  const out = new Float32Array(fanIn * fanOut)
  for (let i = 0; i < out.length; i++) out[i] = (2 * r() - 1) * limit
  return out
}

/** Uniform values in [-limit, limit] (used for peephole vectors, which have no fan-in/fan-out). */
export function uniform(n: number, limit: number, seed: number): Float32Array {
  const r = mulberry32(seed)
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) out[i] = (2 * r() - 1) * limit
  return out
}
