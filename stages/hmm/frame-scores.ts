/**
 * Frame scores for the search: per-frame, per-pdf log-likelihoods, frame-major.
 * A hybrid DNN gives posteriors p(pdf | x); the HMM wants likelihoods p(x | pdf) ∝ p(pdf | x) / p(pdf),
 * so the scaled log-likelihood is  acousticScale · (log posterior − log prior).
 * Priors come from counting pdfs in the training alignments, floored so that a rare pdf does not
 * get a huge bonus from dividing by a tiny prior.
 */

export interface FrameScores {
  readonly numFrames: number
  readonly numPdfs: number
  /** numFrames × numPdfs, frame-major */
  readonly data: Float32Array
}

export class FrameScoresError extends Error {
  override name = 'FrameScoresError'
}

export function checkFrameScores(s: FrameScores): void {
  if (s.data.length !== s.numFrames * s.numPdfs) {
    throw new FrameScoresError(
      `expected ${s.numFrames}×${s.numPdfs} = ${s.numFrames * s.numPdfs} values, got ${s.data.length}`,
    )
  }
}

/**
 * Pdf priors from frame alignments (pdf id per frame): relative counts, each floored at `floor`
 * (default 1e-5) and renormalised to sum to one.
 */
export function estimatePriors(numPdfs: number, alignments: Iterable<ArrayLike<number>>, floor = 1e-5): Float64Array {
  const c = new Float64Array(numPdfs)
  let n = 0
  for (const a of alignments) {
    for (let i = 0; i < a.length; i++) {
      const p = a[i]!
      if (!(p >= 0 && p < numPdfs)) throw new FrameScoresError(`pdf id ${p} out of range [0, ${numPdfs})`)
      c[p]!++
      n++
    }
  }
  if (n === 0) throw new FrameScoresError('cannot estimate priors from zero frames')
  let z = 0
  for (let p = 0; p < numPdfs; p++) z += c[p] = Math.max(c[p]! / n, floor)
  for (let p = 0; p < numPdfs; p++) c[p]! /= z
  return c
}

export interface LoglikOptions {
  /** multiplies the log-likelihoods (Kaldi's --acoustic-scale), default 1 */
  readonly acousticScale?: number
  /** true if the input holds log-posteriors already (e.g. log-softmax output) */
  readonly inputIsLog?: boolean
  /** posteriors are clamped below at this value before the log (default 1e-10) */
  readonly posteriorFloor?: number
}

/** acousticScale · (log posterior − log prior) for every frame and pdf. */
export function posteriorsToLoglik(post: FrameScores, priors: Float64Array, opts: LoglikOptions = {}): FrameScores {
  checkFrameScores(post)
  if (priors.length !== post.numPdfs)
    throw new FrameScoresError(`expected ${post.numPdfs} priors, got ${priors.length}`)
  const scale = opts.acousticScale ?? 1
  const fl = opts.posteriorFloor ?? 1e-10
  const logPrior = Float64Array.from(priors, (p) => Math.log(p))
  const out = new Float32Array(post.data.length)
  const P = post.numPdfs
  for (let i = 0; i < out.length; i++) {
    const v = post.data[i]!
    const lp = opts.inputIsLog ? v : Math.log(Math.max(v, fl))
    out[i] = scale * (lp - logPrior[i % P]!)
  }
  return { numFrames: post.numFrames, numPdfs: P, data: out }
}
