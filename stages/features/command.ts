import { z } from 'zod'
import { defineArrowStage } from '../../pipeline/io/command.js'
import { featuresOptions, planFeatures } from './stage.js'

export const featuresCommand = defineArrowStage({
  command: 'features <input>',
  describe: 'Kaldi fbank/MFCC features of a data dir or manifest stream (Kaldi option names, seeded dither)',
  accepts: ['manifest'],
  options: featuresOptions,
  cli: {
    jobs: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(1)
      .describe('worker threads computing utterances in parallel; the output is the same for any value'),
    allowCommands: z
      .boolean()
      .default(false)
      .describe(
        'run wav.scp entries that are commands (`cmd |`); they run with sh -c as written, so only for data dirs you trust',
      ),
  },
  positionals: {
    input: z.string().describe('Kaldi data dir, manifest@1 Arrow file, or - for a manifest stream on stdin'),
  },
  examples: [
    ['ktp features data/train --num-mel-bins 40 -o exp/fbank/train.arrow', '40 log mel bins, Kaldi defaults otherwise'],
    ['ktp features data/train --type mfcc --dither 0 --jobs 2 -o exp/mfcc/train.arrow', 'exact MFCCs on two threads'],
    ['ktp features data/train --shard 3/8 -o exp/fbank/train.3.arrow', 'the third of eight jobs (then ktp merge)'],
    ['ktp features data/8k --sample-frequency 16000 --resample -o f.arrow', 'resample 8 kHz audio to 16 kHz'],
  ],
  plan: ({ options, input, jobs, allowCommands }, open) => planFeatures(options, { input, jobs, allowCommands }, open),
})
