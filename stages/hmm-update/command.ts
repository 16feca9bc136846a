import { z } from 'zod'
import { defineCommand } from '../../pipeline/io/command.js'
import { hmmUpdate, hmmUpdateOptions } from './stage.js'

export const hmmUpdateCommand = defineCommand({
  command: 'hmm-update <labels..>',
  describe: 're-estimate the priors and transition probabilities of an HMM model from frame labels',
  options: hmmUpdateOptions,
  cli: {
    hmm: z.string().describe('the HMM model the labels were made with'),
    output: z.string().describe('the updated HMM model file (may be the same as --hmm; written atomically)'),
  },
  positionals: { labels: z.array(z.string()).describe('labels@1 files (ktp align output), or - for stdin') },
  examples: [
    [
      'ktp hmm-update --hmm exp/hmm0.json exp/ali0.arrow -o exp/hmm1.json',
      'priors and transitions from a flat-start alignment',
    ],
  ],
  mayOverwrite: ['hmm'], // read whole, then replaced atomically
  run: ({ options, ...files }) => hmmUpdate(options, files),
})
