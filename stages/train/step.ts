import * as tf from '@tensorflow/tfjs'
import type { Model } from '../nn/index.js'
import { type PartResult, type TrainBatch, disposeBatch, partGradients } from './loss.js'
import { type Optimizer, clipAndGuard } from './optimizer.js'
import type { GradientWorkers } from './workers.js'

/**
 * One optimisation step: the batch's gradient (on this thread, or split with the worker pool),
 * clipping and the NaN/Inf guard, then the optimizer update. Returns the statistics
 * [loss · weight, gate, correct, counted] as one tensor, so the loop reads many steps back at once
 * instead of syncing after every batch. `gate` is 0 when the step was skipped as non-finite.
 */
export type Step = (b: TrainBatch, lr: number) => Promise<tf.Tensor>

export function makeStep(model: Model, opt: Optimizer, clip: number, pool: GradientWorkers | null): Step {
  return async (b, lr) => {
    // Data parallel: parts 1…N−1 go to the workers while this thread computes part 0.
    const split = pool ? pool.dispatch(model.params, b) : null
    let local: PartResult
    try {
      local = partGradients(model, split ? split.local : b, split ? split.localScale : 1)
    } finally {
      if (split) disposeBatch(split.local)
    }
    try {
      const remote = split ? await split.remote : []
      return tf.tidy(() => {
        const grads = pool ? pool.sumGradients(model.params, local.grads, remote) : local.grads
        const { grads: clipped, gate } = clipAndGuard(grads, clip)
        opt.step(clipped, lr, gate)
        let value: tf.Scalar = local.value
        let correct: tf.Scalar = local.correct
        let counted: tf.Scalar = local.counted
        for (const r of remote) {
          if (r == null) continue
          value = tf.add(value, r.loss)
          correct = tf.add(correct, r.correct)
          counted = tf.add(counted, r.counted)
        }
        const w = b.mask ? tf.sum(b.mask) : tf.scalar(b.rows)
        return tf.stack([tf.where(tf.isFinite(value), tf.mul(value, w), tf.scalar(0)), gate, correct, counted])
      })
    } finally {
      tf.dispose([local.value, local.correct, local.counted, ...Object.values(local.grads)])
    }
  }
}
