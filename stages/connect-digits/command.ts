import { z } from 'zod'
import { defineCommand } from '../../pipeline/io/command.js'
import { connectDigits, connectDigitsOptions } from './stage.js'

export const connectDigitsCommand = defineCommand({
  command: 'connect-digits <src>',
  describe:
    'build connected-digit utterances (train/dev/test by speaker, with true word boundaries) from FSDD recordings',
  options: connectDigitsOptions,
  cliOptions: z.object({ output: z.string().describe('output directory (train/, dev/, test/ data dirs and wav/)') }),
  positionals: (y) =>
    y
      .positional('src', { describe: 'FSDD folder (with recordings/) or the recordings themselves', type: 'string' })
      .demandOption('output'),
  examples: [['ktp connect-digits fixtures/fsdd -o data/digits --seed 1', 'train/dev/test data dirs with words.ctm']],
  run: async (opts, argv) => {
    connectDigits(String(argv.src), String(argv.output), connectDigitsOptions.parse(opts), (l) =>
      process.stderr.write(`${l}\n`),
    )
    return 0
  },
})
