import { z } from 'zod'
import { defineCommand } from '../../pipeline/io/command.js'
import { hmmInit, hmmInitOptions } from './stage.js'

export const hmmInitCommand = defineCommand({
  command: 'hmm-init',
  describe: 'create an HMM model (units, lexicon, silence, flat transitions) and its pdf inventory',
  options: hmmInitOptions,
  cli: {
    output: z.string().describe('the HMM model file to write (JSON, ktp.hmm@1)'),
    inventory: z
      .string()
      .optional()
      .describe('the "pdf-name id" inventory file to write (default: the output with .json replaced by .pdfs.txt)'),
  },
  examples: [
    [
      'ktp hmm-init --whole-word-digits --states 5 --silence sil -o exp/hmm0.json',
      'FSDD: 5-state digit words + silence',
    ],
    ['ktp hmm-init --phones-from timit48 --states 3 -o exp/hmm0.json', 'TIMIT: a 48-phone loop'],
  ],
  run: ({ options, ...files }) => hmmInit(options, files),
})
