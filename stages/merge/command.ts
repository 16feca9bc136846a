import { z } from 'zod'
import { defineArrowStage } from '../../pipeline/io/command.js'
import { planMerge } from './stage.js'

export const mergeCommand = defineArrowStage({
  command: 'merge <inputs..>',
  describe: 'merge the parts written by --shard i/N jobs into one file sorted by utterance id',
  accepts: [],
  shard: false,
  options: z.object({}),
  positionals: { inputs: z.array(z.string()).describe('part files (each sorted by utterance id)') },
  examples: [['ktp merge exp/feats.{1..4}.arrow -o exp/feats.arrow', 'join four feature shards']],
  plan: ({ inputs }, open) => planMerge(inputs, open),
})
