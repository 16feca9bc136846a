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

/**
 * The most parameters a model may have: training holds about six float32 copies of them (weights,
 * newbob's best weights, gradients, up to two optimizer slots, the checkpoint buffer), and a
 * wasm32 heap tops out at 4 GB. A config asking for more (`"hidden":[1000000000]`) is refused with
 * a message instead of failing inside a typed-array allocation (or taking the machine's memory).
 */
export const MAX_PARAMS = 250_000_000

/** Thrown when a build would exceed MAX_PARAMS: the parameters counted so far, the one that tipped it. */
export class ModelTooLarge extends Error {
  constructor(
    readonly atLeast: number,
    readonly shape: number[],
  ) {
    super(
      `at least ${atLeast.toExponential(2)} parameters (a tensor of shape [${shape.join(', ')}] among them), more than the ${MAX_PARAMS.toExponential(2)} ktp trains (about ${((MAX_PARAMS * 24) / 1e9).toFixed(0)} GB of training state)`,
    )
    this.name = 'ModelTooLarge'
  }
}

let counted: number | null = null

/**
 * Run a model build with the parameter count bounded: every initialiser below adds its size
 * before allocating, and throws ModelTooLarge past MAX_PARAMS.
 */
export function boundedBuild<T>(build: () => T): T {
  const outer = counted
  counted = 0
  try {
    return build()
  } finally {
    counted = outer
  }
}

function allocate(shape: number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1)
  if (counted !== null) {
    counted += n
    if (counted > MAX_PARAMS) throw new ModelTooLarge(counted, shape)
  }
  return new Float32Array(n)
}

/** Glorot/Xavier uniform for a [fanIn, fanOut] matrix: U(-l, l), l = sqrt(6 / (fanIn + fanOut)). */
export function glorotUniform(fanIn: number, fanOut: number, seed: number): Float32Array {
  const limit = Math.sqrt(6 / (fanIn + fanOut))
  const r = mulberry32(seed)
  const out = allocate([fanIn, fanOut])
  for (let i = 0; i < out.length; i++) out[i] = (2 * r() - 1) * limit
  return out
}

/** Uniform values in [-limit, limit] (used for peephole vectors, which have no fan-in/fan-out). */
export function uniform(n: number, limit: number, seed: number): Float32Array {
  const r = mulberry32(seed)
  const out = allocate([n])
  for (let i = 0; i < n; i++) out[i] = (2 * r() - 1) * limit
  return out
}
