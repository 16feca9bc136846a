import { mulberry32 } from '../nn/init.js'

/** Seeded Fisher–Yates, so the same seed and epoch give the same batch order on any machine. */
export function shuffleInPlace(a: Uint32Array | number[], rand: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    const t = a[i]
    a[i] = a[j]
    a[j] = t
  }
}

/** The random stream of one epoch: depends on (seed, epoch) only, which makes resumption exact. */
export function epochRandom(seed: number, epoch: number): () => number {
  return mulberry32((Math.imul(seed >>> 0, 0x9e3779b1) ^ ((epoch + 1) * 0x85ebca6b)) >>> 0)
}
