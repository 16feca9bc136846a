/**
 * IEEE 754 half precision, as Arrow's Float16 stores it (raw Uint16 bits). Soft targets are
 * stored as f16 log-probabilities to halve their size; students decode them through a 64K-entry
 * table, so reading costs one lookup per value.
 */
const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/** Round-to-nearest-even float32 → float16 bits (overflow → ±Inf, NaN kept). */
export function toF16(v: number): number {
  f32[0] = v
  const x = u32[0]
  const sign = (x >>> 16) & 0x8000
  const exp = (x >>> 23) & 0xff
  let mant = x & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0)
  let e = exp - 127 + 15
  if (e >= 0x1f) return sign | 0x7c00
  if (e <= 0) {
    if (e < -10) return sign
    mant |= 0x800000
    const shift = 14 - e
    let half = mant >>> shift
    const rem = mant & ((1 << shift) - 1)
    const mid = 1 << (shift - 1)
    if (rem > mid || (rem === mid && half & 1)) half++
    return sign | half
  }
  let half = (e << 10) | (mant >>> 13)
  const rem = mant & 0x1fff
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++ // may carry into the exponent: still correct
  e = half
  return sign | e
}

const TABLE = (() => {
  const t = new Float32Array(65536)
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1
    const e = (h >>> 10) & 0x1f
    const m = h & 0x3ff
    t[h] = e === 0 ? s * m * 2 ** -24 : e === 0x1f ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15)
  }
  return t
})()

export function fromF16(h: number): number {
  return TABLE[h & 0xffff]
}

export function decodeF16(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  for (let i = 0; i < src.length; i++) out[i] = TABLE[src[i]]
  return out
}

export function encodeF16(src: ArrayLike<number>, out = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) out[i] = toF16(src[i])
  return out
}
