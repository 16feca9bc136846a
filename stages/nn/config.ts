/**
 * Model configuration: the JSON a recipe or CLI gives to build a model. zod v4 schema, the single
 * source of truth for fields, defaults and descriptions.
 */
import { z } from 'zod'

export const DnnConfigSchema = z
  .object({
    type: z.literal('dnn').describe('Feed-forward network on (spliced) frames'),
    hidden: z
      .array(z.number().int().positive())
      .describe('Hidden layer sizes, input side first; [] gives a linear (softmax regression) model'),
    activation: z.enum(['sigmoid', 'tanh', 'relu']).default('sigmoid').describe('Hidden-layer nonlinearity'),
  })
  .strict()
  .describe('DNN: input → hidden layers → linear output logits')

export const RecurrentConfigSchema = z
  .object({
    type: z
      .enum(['lstm', 'lstmp', 'gru', 'rnn'])
      .describe('Cell type: LSTM, LSTM with recurrent projection (Sak et al. 2014), GRU, or tanh RNN'),
    layers: z.number().int().positive().default(1).describe('Number of stacked recurrent layers'),
    cells: z.number().int().positive().describe('Cells (hidden units) per layer and direction'),
    projection: z
      .number()
      .int()
      .positive()
      .optional()
      .describe('Recurrent projection size (lstmp only; required there)'),
    peepholes: z.boolean().default(false).describe('Peephole connections from the cell to the gates (lstm/lstmp only)'),
    bidirectional: z
      .boolean()
      .default(false)
      .describe('Run each layer in both directions and concatenate their outputs'),
    bottleneck: z
      .number()
      .int()
      .positive()
      .optional()
      .describe('Size of a linear bottleneck layer between the last recurrent layer and the output layer'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.type === 'lstmp' && c.projection == null) {
      ctx.addIssue({
        code: 'custom',
        path: ['projection'],
        message: 'expected projection > 0 for type lstmp, got none',
      })
    }
    if (c.type !== 'lstmp' && c.projection != null) {
      ctx.addIssue({
        code: 'custom',
        path: ['projection'],
        message: `projection applies to lstmp only, got type ${c.type}`,
      })
    }
    if (c.peepholes && c.type !== 'lstm' && c.type !== 'lstmp') {
      ctx.addIssue({
        code: 'custom',
        path: ['peepholes'],
        message: `peepholes apply to lstm/lstmp only, got type ${c.type}`,
      })
    }
  })
  .describe('Recurrent network on [batch, time, dim] chunks with a per-frame linear output layer')

export const ModelConfigSchema = z
  .union([DnnConfigSchema, RecurrentConfigSchema])
  .describe('Acoustic model architecture')

export const ModelSpecSchema = z
  .object({
    model: ModelConfigSchema,
    inputDim: z.number().int().positive().describe('Feature dimension of one (spliced) input frame'),
    numClasses: z.number().int().positive().describe('Number of output classes (targets)'),
    seed: z.number().int().default(1).describe('Seed of the deterministic parameter initialisation'),
  })
  .strict()
  .describe('Everything needed to build (and rebuild identically) a model')

export type DnnConfig = z.infer<typeof DnnConfigSchema>
export type RecurrentConfig = z.infer<typeof RecurrentConfigSchema>
export type ModelConfig = z.infer<typeof ModelConfigSchema>
export type ModelSpec = z.infer<typeof ModelSpecSchema>
export type ModelSpecInput = z.input<typeof ModelSpecSchema>
