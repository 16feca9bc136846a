import { z } from 'zod'
import { defineCommand } from '../../pipeline/io/command.js'
import { connectDigits, connectDigitsOptions } from './stage.js'

export const connectDigitsCommand = defineCommand({
  command: 'connect-digits <src>',
  describe:
    'build connected-digit utterances (train/dev/test by speaker, with true word boundaries) from FSDD recordings',
  options: connectDigitsOptions,
  cli: { output: z.string().describe('output directory (train/, dev/, test/ data dirs and wav/)') },
  positionals: { src: z.string().describe('FSDD folder (with recordings/) or the recordings themselves') },
  examples: [['ktp connect-digits fixtures/fsdd -o data/digits --seed 1', 'train/dev/test data dirs with words.ctm']],
  run: async ({ options, src, output }) => {
    await connectDigits(src, output, options, (l) => process.stderr.write(`${l}\n`))
    return 0
  },
})
