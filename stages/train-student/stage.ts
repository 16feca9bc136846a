import type { z } from 'zod'
import { TRAIN_STUDENT, runMethod } from '../train/method.js'
import { type TrainCliOptions, methodTrainOptions, modeOption } from '../train/options.js'

/**
 * `ktp train-student`: ktp train with a student's defaults — a 2-layer LSTM on unspliced frames,
 * trained by knowledge transfer (--mode kt) — the method of Tang et al. (arXiv:1506.02256) and its
 * baselines (stages/train/options.ts lists the modes) for any registered model type.
 */
export const studentOptions = methodTrainOptions.extend({
  mode: modeOption.default('kt'),
  model: methodTrainOptions.shape.model.default('{"type":"lstm","cells":256,"layers":2}'),
  context: methodTrainOptions.shape.context.default(0),
})
export type StudentOptions = z.infer<typeof studentOptions>

export function runTrainStudent(o: StudentOptions, cli: TrainCliOptions, log: (l: string) => void): Promise<number> {
  return runMethod(TRAIN_STUDENT, o, cli, log, studentOptions)
}
