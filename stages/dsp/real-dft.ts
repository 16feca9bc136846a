/**
 * The spectra behind Kaldi features: power (or magnitude) spectra of windowed real frames.
 *
 * Two strategies, chosen per frame length:
 * - power of two (Kaldi's default, roundToPowerOfTwo): two real frames per complex FFT. Frame a goes
 *   in the real parts, frame b in the imaginary parts; with Z = FFT(a + ib) and Z* the conjugate,
 *   A[k] = (Z[k] + Z*[N−k]) / 2 and B[k] = (Z[k] − Z*[N−k]) / 2i. One complex fft.js transform of
 *   size N costs ~1.4 real ones (measured), so a pair costs ~30% less than two real transforms, and
 *   only the bins the mel banks use are separated.
 * - any other length: Bluestein's chirp-z transform, one frame at a time (rare: roundToPowerOfTwo false).
 */
import FFT from 'fft.js'

export function nextPow2(n: number): number {
  let p = 1
  while (p < n) p *= 2
  return p
}

/**
 * Power spectra of frame pairs for a power-of-two size N: `load` frame a into slot 0 and frame b
 * into slot 1 (the zero padding beyond `win` is never written), then `transform`.
 */
export class PairedPowerSpectrum {
  private readonly fft: FFT
  private readonly packed: Float64Array // interleaved a[i] + i·b[i]
  private readonly z: Float64Array

  constructor(readonly n: number) {
    this.fft = new FFT(n)
    this.packed = new Float64Array(2 * n)
    this.z = new Float64Array(2 * n)
  }

  /** Put the first `win` samples of `frame` (null: zeros) in slot 0 (real part) or 1 (imaginary). */
  load(slot: 0 | 1, frame: Float64Array | null, win: number): void {
    const packed = this.packed
    if (frame) for (let i = 0; i < win; i++) packed[2 * i + slot] = frame[i]
    else for (let i = 0; i < win; i++) packed[2 * i + slot] = 0
  }

  /**
   * Bins [0, end) of both frames: `powA`/`powB` get |A[k]|² and |B[k]|² (or |A[k]|, |B[k]| when
   * `!usePower`). end ≤ N/2.
   */
  transform(powA: Float64Array, powB: Float64Array, end: number, usePower: boolean): void {
    const { packed, z, n } = this
    this.fft.transform(z, packed)
    for (let k = 0; k < end; k++) {
      const m = k === 0 ? 0 : n - k
      const zr = z[2 * k]
      const zi = z[2 * k + 1]
      const mr = z[2 * m]
      const mi = z[2 * m + 1]
      // 4|A|² = (zr + mr)² + (zi − mi)²;  4|B|² = (zi + mi)² + (zr − mr)²
      const ar = zr + mr
      const ai = zi - mi
      const br = zi + mi
      const bi = zr - mr
      const pa = 0.25 * (ar * ar + ai * ai)
      const pb = 0.25 * (br * br + bi * bi)
      powA[k] = usePower ? pa : Math.sqrt(pa)
      powB[k] = usePower ? pb : Math.sqrt(pb)
    }
  }
}

/**
 * Real DFT of a non-power-of-two length (roundToPowerOfTwo: false) by Bluestein's chirp-z trick:
 * the DFT becomes a circular convolution of power-of-two size, done with fft.js. Only bins 0..n/2
 * are produced, interleaved re/im like fft.js' output.
 */
export class BluesteinDft {
  private readonly fft: FFT
  private readonly cr: Float64Array
  private readonly ci: Float64Array
  private readonly bHat: Float64Array
  private readonly a: Float64Array
  private readonly aHat: Float64Array
  private readonly conv: Float64Array

  constructor(private readonly n: number) {
    const m = nextPow2(2 * n - 1)
    this.fft = new FFT(m)
    this.cr = new Float64Array(n)
    this.ci = new Float64Array(n)
    const b = new Float64Array(2 * m)
    for (let k = 0; k < n; k++) {
      // chirp c[k] = exp(-iπk²/n); reduce k² mod 2n first so the angle stays exact for large k
      const ang = (Math.PI * ((k * k) % (2 * n))) / n
      this.cr[k] = Math.cos(ang)
      this.ci[k] = -Math.sin(ang)
      b[2 * k] = this.cr[k]
      b[2 * k + 1] = -this.ci[k] // conj(c)
      if (k > 0) { b[2 * (m - k)] = this.cr[k]; b[2 * (m - k) + 1] = -this.ci[k] }
    }
    this.bHat = new Float64Array(2 * m)
    this.fft.transform(this.bHat, b)
    this.a = new Float64Array(2 * m)
    this.aHat = new Float64Array(2 * m)
    this.conv = new Float64Array(2 * m)
  }

  realTransform(out: Float64Array, x: Float64Array): void {
    const { n, a, aHat, bHat, conv, cr, ci } = this
    a.fill(0)
    for (let k = 0; k < n; k++) { a[2 * k] = x[k] * cr[k]; a[2 * k + 1] = x[k] * ci[k] }
    this.fft.transform(aHat, a)
    for (let i = 0; i < aHat.length; i += 2) {
      const re = aHat[i] * bHat[i] - aHat[i + 1] * bHat[i + 1]
      const im = aHat[i] * bHat[i + 1] + aHat[i + 1] * bHat[i]
      a[i] = re
      a[i + 1] = im
    }
    this.fft.inverseTransform(conv, a)
    for (let k = 0; k <= n >> 1; k++) {
      out[2 * k] = conv[2 * k] * cr[k] - conv[2 * k + 1] * ci[k]
      out[2 * k + 1] = conv[2 * k] * ci[k] + conv[2 * k + 1] * cr[k]
    }
  }
}
