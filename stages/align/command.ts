import { z } from 'zod'
import { defineArrowStage } from '../../pipeline/io/command.js'
import { alignOptions, planAlign } from './stage.js'

export const alignCommand = defineArrowStage({
  command: 'align [scores]',
  describe: 'frame labels (pdf ids) from transcripts: flat start, or Viterbi realignment of network log-posteriors',
  accepts: ['soft-dense'],
  options: alignOptions,
  cli: {
    hmm: z.string().describe('HMM model file (ktp hmm-init / ktp hmm-update)'),
    text: z.string().describe('transcripts, Kaldi data-dir "text" (utt word word ...)'),
    feats: z
      .string()
      .optional()
      .describe('with --flat-start: any ktp Arrow file of the utterances (only frame counts are used)'),
    ctm: z
      .string()
      .optional()
      .describe('with --flat-start: known word spans, CTM "utt channel start duration word" in seconds'),
    ctmOut: z.string().optional().describe('also write the aligned word segments as a CTM file (seconds)'),
  },
  positionals: {
    scores: z
      .string()
      .optional()
      .describe('soft-dense@1 log-posteriors (ktp infer --top-k 0), file or - for stdin; not with --flat-start'),
  },
  examples: [
    [
      'ktp align --hmm exp/hmm0.json --text data/train/text --flat-start --feats exp/feats.arrow --ctm data/train/ctm -o exp/ali0.arrow',
      'flat start inside known word spans',
    ],
    [
      'ktp infer --model exp/dnn --top-k 0 exp/feats.arrow | ktp align --hmm exp/hmm1.json --text data/train/text - -o exp/ali1.arrow',
      'Viterbi realignment with a trained network',
    ],
  ],
  plan: ({ options, hmm, text, feats, ctm, ctmOut, scores }, open) =>
    planAlign(options, { hmm, text, feats, ctm, ctmOut, scores }, open),
})
