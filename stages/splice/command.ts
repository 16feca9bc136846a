import { z } from 'zod'
import { defineArrowStage } from '../../pipeline/io/command.js'
import { spliceOptions, planSplice } from './stage.js'

export const spliceCommand = defineArrowStage({
  command: 'splice [input]',
  describe: 'stack each frame with its neighbours (Kaldi splice-feats; edge frames repeated)',
  accepts: ['features'],
  options: spliceOptions,
  positionals: { input: z.string().default('-').describe('features Arrow file, or - for stdin (default)') },
  examples: [
    [
      'ktp cmvn apply --stats exp/cmvn.json exp/feats.arrow | ktp splice --context 5 | ktp info -',
      '23-dim fbank → 253-dim input',
    ],
    ['ktp splice exp/feats.arrow --left 3 --right 1 -o exp/spliced.arrow', 'asymmetric context'],
  ],
  plan: async ({ options }, open) => planSplice(options, await open()),
})
