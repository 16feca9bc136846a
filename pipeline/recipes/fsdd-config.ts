import { z } from 'zod'
import { connectDigitsOptions } from '../../stages/connect-digits/stage.js'
import { hmmInitOptions } from '../../stages/hmm/model.js'
import { featuresConfigSchema } from './features-config.js'
import { SYSTEMS_FULL, SYSTEMS_QUICK, systemsConfigSchema, teacherConfigSchema } from './systems-config.js'

/**
 * The fsdd recipe's configuration: connected digits from FSDD (split by speaker), their features,
 * a whole-word digit HMM and the alignment DNN; then the systems every recipe shares.
 */
const connect = connectDigitsOptions.shape

export const fsddConfigSchema = systemsConfigSchema.extend({
  /** Seed of the connected-digit data (the split and strings), not of training. */
  dataSeed: connect.seed.unwrap(),
  connect: z.strictObject({
    maxPerSpeaker: connect.maxPerSpeaker.unwrap(),
    testSpeakers: connect.testSpeakers.unwrap(),
    devSpeakers: connect.devSpeakers.unwrap(),
  }),
  features: featuresConfigSchema,
  hmm: z.strictObject({
    states: hmmInitOptions.shape.states.unwrap(),
    silenceStates: hmmInitOptions.shape.silenceStates.unwrap(),
  }),
  /** The DNN whose posteriors realign the flat start (its context is the teachers'). */
  align: teacherConfigSchema.pick({ hidden: true, maxEpochs: true, lr: true }),
})

export type FsddConfig = z.infer<typeof fsddConfigSchema>

const decode: FsddConfig['decode'] = {
  acousticScales: [0.1, 0.2, 0.5, 1],
  insertionPenalties: [0, -2, -5],
  lm: 'unigram',
}

export const FSDD_FULL: FsddConfig = {
  dataSeed: 1,
  connect: { maxPerSpeaker: 0, testSpeakers: 'george', devSpeakers: 'lucas' },
  features: { numMelBins: 23 },
  hmm: { states: 5, silenceStates: 3 },
  align: { hidden: [256, 256], maxEpochs: 6, lr: 0.5 },
  ...SYSTEMS_FULL,
  decode,
}

/** Small enough for the demo (minutes on 2 cores), large enough that the systems differ. */
export const FSDD_QUICK: FsddConfig = {
  ...FSDD_FULL,
  ...SYSTEMS_QUICK,
  connect: { ...FSDD_FULL.connect, maxPerSpeaker: 100 },
  hmm: { states: 3, silenceStates: 3 },
  align: { hidden: [128], maxEpochs: 3, lr: 0.5 },
  decode: { acousticScales: [0.3, 1], insertionPenalties: [0, -3], lm: 'unigram' },
}
