import { z } from 'zod'
import { featuresOptions } from '../../stages/features/stage.js'

/** The `features` block of a recipe config: fbank bins, and how the features are normalised. */
export const featuresConfigSchema = z.strictObject({
  numMelBins: featuresOptions.shape.numMelBins.unwrap(),
  cmvn: z
    .enum(['global', 'speaker'])
    .optional()
    .describe("CMVN: the training data's global statistics (absent: global), or each speaker's own"),
})
