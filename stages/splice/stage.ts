import type { RecordBatch } from 'apache-arrow'
import { z } from 'zod'
import { KtpError } from '../../schemas/errors.js'
import { makeSchema } from '../../schemas/kinds.js'
import { getMatrix, makeUttBatch, uttId } from '../../schemas/utterance.js'
import type { StagePlan } from '../../pipeline/io/command.js'
import type { StageInput, Transform } from '../../pipeline/io/run-stage.js'
import { columnWidth } from '../../schemas/kinds.js'
import { spliceFrames } from '../dsp/splice.js'

/**
 * Frame splicing, Kaldi's `splice-feats`: output frame t is input frames t−L … t+R side by side,
 * indices clamped to [0, frames−1] (edge frames repeated), so the frame count is unchanged and the
 * dim becomes D·(L+R+1). Training can use `spliceRow` to build spliced rows on the fly from the
 * unspliced matrix instead of storing an (L+R+1)-times larger copy.
 */
/** A bound on context (each side): Kaldi recipes use ≤ 15; 10⁹ would allocate terabytes before failing. */
const MAX_CONTEXT = 1000

export const spliceOptions = z.object({
  context: z
    .number()
    .int()
    .min(0)
    .max(MAX_CONTEXT)
    .optional()
    .describe('frames of context on each side (sets --left and --right)'),
  left: z
    .number()
    .int()
    .min(0)
    .max(MAX_CONTEXT)
    .optional()
    .describe('frames of left context (default 4, as splice-feats)'),
  right: z
    .number()
    .int()
    .min(0)
    .max(MAX_CONTEXT)
    .optional()
    .describe('frames of right context (default 4, as splice-feats)'),
})
export type SpliceOptions = z.infer<typeof spliceOptions>

export const DEFAULT_CONTEXT = 4

/** Resolve --context/--left/--right; a contradiction is a usage error naming both options. */
export function spliceContext(opts: SpliceOptions): { left: number; right: number } {
  if (opts.context !== undefined) {
    for (const k of ['left', 'right'] as const) {
      if (opts[k] !== undefined && opts[k] !== opts.context) {
        throw new KtpError(
          'usage',
          `--context ${opts.context} contradicts --${k} ${opts[k]}; give --context, or --left and --right`,
        )
      }
    }
    return { left: opts.context, right: opts.context }
  }
  return { left: opts.left ?? DEFAULT_CONTEXT, right: opts.right ?? DEFAULT_CONTEXT }
}

export { spliceFrames, spliceRow } from '../dsp/splice.js'

/** The stream stage: features (D) → features (D·(L+R+1)). */
export function spliceStage(dim: number, left: number, right: number): Transform {
  const schema = makeSchema('features', { widths: { feats: dim * (left + right + 1) } })
  return (s) =>
    s.map((b: RecordBatch) => {
      const m = getMatrix(b, 'feats')
      return makeUttBatch(schema, { utt: uttId(b), feats: spliceFrames(m.data, m.frames, dim, left, right) })
    })
}

/** A run of the stage over `input`: the context resolved, the output dim from the input's. */
export function planSplice(opts: SpliceOptions, input: StageInput): StagePlan {
  const { left, right } = spliceContext(opts)
  const dim = columnWidth(input.schema, 'feats')
  return {
    stage: 'splice',
    options: { left, right },
    input,
    schema: makeSchema('features', { widths: { feats: dim * (left + right + 1) } }),
    transform: spliceStage(dim, left, right),
  }
}
