/**
 * Finite-difference gradient checker (tfjs has none; it tests gradients against hand-derived
 * formulas only).
 *
 * Checks the scalar L(x₁…xₙ) = Σ R⊙f(x₁…xₙ) with a fixed random R (R = 1 when f returns a
 * scalar), along random directions v per input: the analytic ⟨∇ᵢL, x⁺ − x⁻⟩ against the central
 * difference L(x⁺) − L(x⁻), x± = fl32(x ± ε·v), at ε and ε/2 combined by Richardson extrapolation
 * (cancels the O(ε²) truncation error). Two details keep float32 noise out of the figure:
 * the step is the *actual* float32 difference x⁺ − x⁻ (not 2εv, which rounding changes), and L is
 * summed in float64 in JS from f's float32 outputs (no float32 reduction noise). A directional
 * check tests every component of the gradient at once (a wrong component shows up unless it is
 * orthogonal to a random v, probability 0); v = random + (equal-norm) ∇L/‖∇L‖ keeps the signal
 * well above float32 noise.
 */
import * as tf from '@tensorflow/tfjs'
import { mulberry32 } from './init.js'

export interface GradCheckOptions {
  /** Perturbation scale (absolute, per component, times a standard normal). Default 1e-2. */
  eps?: number
  /** Random directions per input. Default 2. */
  directions?: number
  /** Seed of R and of the directions. */
  seed?: number
  /**
   * Perturb all inputs together along one joint direction instead of one input at a time. Use it
   * when f is a scalar loss: its float32 rounding (~1e-7·|L|) swamps the tiny directional
   * derivatives of small parameter groups (peepholes), while the joint derivative is large.
   */
  joint?: boolean
}

export interface GradCheckEntry {
  input: number
  direction: number
  analytic: number
  numeric: number
  relError: number
}

export interface GradCheckResult {
  /** Largest |numeric/analytic − 1| (Richardson-extrapolated) over all inputs and directions. */
  maxRelError: number
  entries: GradCheckEntry[]
}

/** Standard normal samples (Box–Muller over mulberry32), deterministic. */
function normals(n: number, seed: number): Float64Array {
  const r = mulberry32(seed)
  const out = new Float64Array(n)
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(r(), 1e-12)
    const v = r()
    const m = Math.sqrt(-2 * Math.log(u))
    out[i] = m * Math.cos(2 * Math.PI * v)
    if (i + 1 < n) out[i + 1] = m * Math.sin(2 * Math.PI * v)
  }
  return out
}

export function gradCheck(
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
  opts: GradCheckOptions = {},
): GradCheckResult {
  if (opts.joint && inputs.length > 1) {
    // One flat input whose pieces are reshaped back into the original inputs.
    const sizes = inputs.map((x) => x.size)
    const flat = tf.concat(inputs.map((x) => tf.reshape(x, [x.size])))
    try {
      const g = (v: tf.Tensor) => f(...tf.split(v, sizes).map((p, i) => tf.reshape(p, inputs[i].shape)))
      return gradCheck(g, [flat], { ...opts, joint: false })
    } finally {
      flat.dispose()
    }
  }
  const eps = opts.eps ?? 1e-2
  const dirs = opts.directions ?? 2
  const seed = opts.seed ?? 12345
  // Shape only: f may return one of its inputs (identity), which must not be disposed.
  const outShape = tf.tidy(() => f(...inputs).shape)
  const nOut = outShape.reduce((a, b) => a * b, 1)
  const R = Float32Array.from(nOut === 1 ? [1] : normals(nOut, seed))
  const Rt = tf.tensor(R, outShape)
  try {
    const L = (...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), Rt)) as tf.Scalar
    const grads = tf
      .tidy(() => tf.grads(L)(inputs))
      .map((g) => {
        const v = Float64Array.from(g.dataSync())
        g.dispose()
        return v
      })
    const value = (xs: tf.Tensor[]): number => {
      const y = tf.tidy(() => f(...xs).dataSync())
      let s = 0
      for (let i = 0; i < y.length; i++) s += R[i] * y[i]
      return s
    }
    const entries: GradCheckEntry[] = []
    inputs.forEach((x, i) => {
      const x0 = x.dataSync() as Float32Array
      const at = (vals: Float32Array) => {
        const t = tf.tensor(vals, x.shape, 'float32')
        try {
          return value(inputs.map((y, j) => (j === i ? t : y)))
        } finally {
          t.dispose()
        }
      }
      for (let d = 0; d < dirs; d++) {
        // Random direction plus an equal-norm component along the gradient itself: a purely random
        // direction can be nearly orthogonal to ∇L, and the check then measures float32 noise.
        const v = normals(x0.length, seed + 1000 * (i + 1) + d)
        const gi = grads[i]
        let vn = 0
        let gn = 0
        for (let k = 0; k < v.length; k++) {
          vn += v[k] * v[k]
          gn += gi[k] * gi[k]
        }
        if (gn > 0) {
          const c = Math.sqrt(vn / gn)
          for (let k = 0; k < v.length; k++) v[k] += c * gi[k]
        }
        const xp = new Float32Array(x0.length)
        const xm = new Float32Array(x0.length)
        for (let k = 0; k < x0.length; k++) {
          xp[k] = x0[k] + eps * v[k]
          xm[k] = x0[k] - eps * v[k]
        }
        // Ratio numeric/analytic at steps h and h/2, then Richardson extrapolation: the central
        // difference's O(h²) truncation term cancels, leaving float32 rounding as the error.
        const ratio = (h: number): [number, number] => {
          const xp = new Float32Array(x0.length)
          const xm = new Float32Array(x0.length)
          for (let k = 0; k < x0.length; k++) {
            xp[k] = x0[k] + h * v[k]
            xm[k] = x0[k] - h * v[k]
          }
          let a = 0
          for (let k = 0; k < x0.length; k++) a += grads[i][k] * (xp[k] - xm[k])
          const n = at(xp) - at(xm)
          return [a === 0 ? (n === 0 ? 1 : Infinity) : n / a, a]
        }
        const [r1, a1] = ratio(eps)
        const [r2] = ratio(eps / 2)
        const rho = (4 * r2 - r1) / 3
        const analytic = a1
        const numeric = rho * a1
        const relError = Math.abs(rho - 1) / Math.max(1, Math.abs(rho))
        entries.push({ input: i, direction: d, analytic, numeric, relError })
      }
    })
    return { maxRelError: Math.max(0, ...entries.map((e) => e.relError)), entries }
  } finally {
    Rt.dispose()
  }
}
