import { z } from 'zod'
import { prepareOptions } from '../../stages/prepare/stage.js'
import { featuresConfigSchema } from './features-config.js'
import { SYSTEMS_FULL, SYSTEMS_QUICK, systemsConfigSchema } from './systems-config.js'

/**
 * The timit recipe's configuration: its own, with nothing of fsdd's — how to split a corpus that
 * has no TRAIN/TEST division (or override the one it has), the dev speakers carved from training,
 * the features; then the systems every recipe shares.
 */
const prepare = prepareOptions.shape

export const timitConfigSchema = systemsConfigSchema.extend({
  split: z.strictObject({
    testSpeakers: prepare.testSpeakers,
    testFraction: prepare.testFraction,
    testUtts: prepare.testUtts,
    devFraction: z
      .number()
      .gt(0)
      .lt(1)
      .describe('fraction of the training speakers held out as dev (for newbob and decoder tuning), by a stable hash'),
    foldGroups: z
      .number()
      .int()
      .min(2)
      .optional()
      .describe('--folds: speakers (ids sorted) fall in this many test groups, speaker i in group i mod n (default 6)'),
  }),
  features: featuresConfigSchema,
})

export type TimitConfig = z.infer<typeof timitConfigSchema>

const decode: TimitConfig['decode'] = { acousticScales: [0.2, 0.5, 1], insertionPenalties: [0, -2], lm: 'bigram' }

export const TIMIT_FULL: TimitConfig = {
  split: { devFraction: 0.1 },
  features: { numMelBins: 40 },
  ...SYSTEMS_FULL,
  decode,
}

export const TIMIT_QUICK: TimitConfig = {
  ...TIMIT_FULL,
  ...SYSTEMS_QUICK,
  decode: { ...decode, acousticScales: [0.5] },
}
