import { z } from 'zod'
import { defineCommand } from '../../pipeline/io/command.js'
import { decodeFiles, decodeOptions } from './stage.js'

export const decodeCommand = defineCommand({
  command: 'decode [scores]',
  describe:
    'Viterbi beam-search decoding of network log-posteriors over a word/phone loop with an LM; writes sclite trn',
  options: decodeOptions,
  cli: {
    hmm: z.string().describe('HMM model file (ktp hmm-init / ktp hmm-update)'),
    lmText: z
      .string()
      .optional()
      .describe('LM training text: Kaldi "text" (utt word ...) or sclite trn (word ... (utt))'),
    output: z
      .string()
      .default('-')
      .describe('hypotheses as sclite trn "words (utt)", or - for stdout; a file is written whole at the end'),
    ctmOut: z.string().optional().describe("also write the hypotheses' word segments as a CTM file (seconds)"),
    quiet: z.boolean().default(false).describe('no summary on stderr (warnings are still printed)'),
  },
  positionals: {
    scores: z.string().default('-').describe('soft-dense@1 log-posteriors (ktp infer --top-k 0), file or - for stdin'),
  },
  examples: [
    [
      'ktp infer --model exp/dnn --top-k 0 exp/test-feats.arrow | ktp decode --hmm exp/hmm.json --lm bigram --lm-text data/train/text - -o exp/hyp.trn',
      'decode a test set',
    ],
    [
      'ktp decode --hmm exp/hmm.json --lm uniform --insertion-penalty -2 exp/dev-logp.arrow -o exp/dev.trn',
      'a digit loop with a uniform LM',
    ],
  ],
  run: ({ options, ...files }) => decodeFiles(options, files),
})
