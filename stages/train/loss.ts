import * as tf from '@tensorflow/tfjs'
import { KtpError } from '../../schemas/errors.js'
import { type Model, type Params, softmaxCrossEntropy, sparseSoftmaxCrossEntropy } from '../nn/index.js'

/**
 * Loss: Σ_terms weight · T² · CE(softmax(z / T), targets), averaged over (masked) rows. With soft
 * targets p at T this is T²·KL(p ‖ softmax(z/T)) plus a constant (the targets' entropy), i.e. the
 * knowledge-transfer loss of docs/ARCHITECTURE.md §5; with one-hot targets at T = 1 it is plain cross-entropy;
 * two terms give the α·CE + (1−α)·T²·KL regulariser. Targets come dense (a distribution per row) or
 * sparse (k classes with their probabilities and one probability shared by every other class, e.g.
 * top-k targets with their tail mass): the same loss, without a dense [rows, C] target array.
 */
export interface SparseTargets {
  /** int32 [..., k]: the listed classes of each row (distinct within a row). */
  ids: tf.Tensor
  /** [..., k]: their probabilities. */
  probs: tf.Tensor
  /** [...]: the probability of each of the C − k classes a row does not list. */
  rest: tf.Tensor
}

export type TargetTerm = {
  temperature: number
  weight: number
} & (
  | {
      /** Row-wise target distributions, shaped like the logits. */
      targets: tf.Tensor
      sparse?: undefined
    }
  | { targets?: undefined; sparse: SparseTargets }
)

/** The tensors a target term holds. */
export function termTensors(term: TargetTerm): tf.Tensor[] {
  return term.sparse ? [term.sparse.ids, term.sparse.probs, term.sparse.rest] : [term.targets]
}

/** The same term with each of its tensors replaced by f(tensor) (slices, copies, …). */
export function mapTerm(term: TargetTerm, f: (t: tf.Tensor) => tf.Tensor): TargetTerm {
  const { temperature, weight } = term
  if (term.sparse)
    return {
      temperature,
      weight,
      sparse: { ids: f(term.sparse.ids), probs: f(term.sparse.probs), rest: f(term.sparse.rest) },
    }
  return { temperature, weight, targets: f(term.targets) }
}

export interface TrainBatch {
  x: tf.Tensor
  terms: TargetTerm[]
  /** 0/1 per row (padding), shaped like the logits without the class axis. */
  mask?: tf.Tensor
  /** Class ids per row for accuracy (int32, shaped like mask), when known. */
  labels?: tf.Tensor
  rows: number
}

export function batchLoss(logits: tf.Tensor, b: TrainBatch): tf.Scalar {
  return tf.tidy(() => {
    let total: tf.Scalar | null = null
    for (const term of b.terms) {
      const z = term.temperature === 1 ? logits : tf.div(logits, term.temperature)
      const ce = term.sparse
        ? sparseSoftmaxCrossEntropy(z, term.sparse.ids, term.sparse.probs, term.sparse.rest, b.mask)
        : softmaxCrossEntropy(z, term.targets, b.mask)
      const l = tf.mul(ce, term.weight * term.temperature * term.temperature) as tf.Scalar
      total = total ? (tf.add(total, l) as tf.Scalar) : l
    }
    if (!total) throw new KtpError('no-targets', 'a training batch has no target terms')
    return total
  })
}

/** Correct predictions and counted rows of a batch (masked), as scalars. */
export function correctCount(logits: tf.Tensor, b: TrainBatch): { correct: tf.Scalar; counted: tf.Scalar } | null {
  if (!b.labels) return null
  return tf.tidy(() => {
    const pred = tf.argMax(logits, -1)
    const hit = tf.cast(tf.equal(pred, b.labels!), 'float32')
    const m = b.mask ?? tf.onesLike(hit)
    return { correct: tf.sum(tf.mul(hit, m)) as tf.Scalar, counted: tf.sum(m) as tf.Scalar }
  })
}

/** Dispose every tensor of a batch. */
export function disposeBatch(b: TrainBatch): void {
  tf.dispose([b.x, b.mask, b.labels, ...b.terms.flatMap(termTensors)].filter((t): t is tf.Tensor => t != null))
}

export interface PartResult {
  /** scale · batchLoss of the part. */
  value: tf.Scalar
  /** Gradients of `value`. */
  grads: Params
  correct: tf.Scalar
  counted: tf.Scalar
}

/**
 * Loss (times `scale`), gradients and accuracy counts of one part, on `model`'s own parameters:
 * the computation every thread runs for its part. The caller disposes the result.
 */
export function partGradients(model: Model, b: TrainBatch, scale: number): PartResult {
  const names = model.params.names
  return tf.tidy(() => {
    let captured: tf.Tensor | null = null
    const f = (...ps: tf.Tensor[]): tf.Scalar => {
      const sub: Params = {}
      names.forEach((n, i) => {
        sub[n] = ps[i]
      })
      const logits = model.apply(b.x, sub)
      if (b.labels) captured = tf.keep(logits)
      return tf.mul(batchLoss(logits, b), scale) as tf.Scalar
    }
    const { value, grads } = tf.valueAndGrads(f)(names.map((n) => model.params.get(n)))
    const g: Params = {}
    names.forEach((n, i) => {
      g[n] = grads[i]
    })
    const cc = captured ? correctCount(captured, b) : null
    if (captured) (captured as tf.Tensor).dispose()
    return { value, grads: g, correct: cc?.correct ?? tf.scalar(0), counted: cc?.counted ?? tf.scalar(0) }
  })
}
