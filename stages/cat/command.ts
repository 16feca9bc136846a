import { z } from 'zod'
import { defineArrowStage } from '../../pipeline/io/command.js'
import { catOptions, planCat } from './stage.js'

export const catCommand = defineArrowStage({
  command: 'cat <inputs..>',
  describe: 'concatenate, select or shard ktp Arrow files/streams (or print them as Kaldi text)',
  accepts: [],
  options: catOptions,
  positionals: { inputs: z.array(z.string()).describe('Arrow files, or - for stdin') },
  examples: [
    ['ktp cat a.arrow b.arrow -o ab.arrow', 'join two feature files'],
    ['ktp cat feats.arrow --shard 2/4 | ktp info -', 'the second of four shards, on a pipe'],
    ['ktp cat feats.arrow --format kaldi-text | copy-feats ark,t:- ark:feats.ark', 'hand features to Kaldi'],
  ],
  plan: (args, open) => planCat(args, open),
})
