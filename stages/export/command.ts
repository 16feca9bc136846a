import { z } from 'zod'
import { defineCommand } from '../../pipeline/io/command.js'
import { exportModel, exportOptions } from './stage.js'

export const exportCommand = defineCommand({
  command: 'export',
  describe: 'export a trained model as a tfjs-layers model, or with --web as a static site that recognises speech',
  options: exportOptions,
  cli: {
    model: z.string().describe('trained model directory (ktp.json + params.bin)'),
    output: z.string().describe('output directory (replaced whole if it holds an earlier ktp export)'),
    hmm: z.string().optional().describe('--web: the HMM model the network was trained on (ktp hmm-update)'),
    lmText: z.string().optional().describe('--web: LM training text, as ktp decode --lm-text'),
    cmvn: z.string().optional().describe('--web: CMVN statistics of the training features (ktp cmvn compute)'),
    features: z
      .string()
      .optional()
      .describe('--web: a features file from ktp features (before cmvn): the page computes the same front end'),
  },
  examples: [
    [
      'ktp export --web --model exp/lstm-kt.s1 --hmm exp/hmm1.json --lm unigram --lm-text data/train/text --cmvn exp/cmvn.json --features feats/train.raw.arrow --acoustic-scale 0.3 -o site',
      'a static site for the browser',
    ],
    ['ktp export --model exp/lstm-kt.s1 -o exp/lstm-kt.tfjs', 'the tfjs-layers model alone'],
  ],
  run: ({ options, ...files }) => exportModel(options, files),
})
