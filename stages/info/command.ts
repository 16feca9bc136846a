import { z } from 'zod'
import { defineCommand } from '../../pipeline/io/command.js'
import { infoOptions, printInfo } from './stage.js'

export const infoCommand = defineCommand({
  command: 'info <input>',
  describe: 'show the kind, provenance, utterance/frame counts and dims of a ktp Arrow file or stream',
  options: infoOptions,
  positionals: { input: z.string().describe('Arrow file, or - for stdin') },
  examples: [
    ['ktp info exp/feats.arrow', 'summarise a feature file'],
    ['ktp cat exp/feats.arrow --shard 1/4 | ktp info - --json', 'count the utterances of one shard'],
  ],
  run: ({ options, input }) => printInfo(options, input),
})
