import { z } from 'zod'
import { defineCommand } from '../../pipeline/io/command.js'
import { printScore, scoreOptions } from './stage.js'

export const scoreCommand = defineCommand({
  command: 'score',
  describe: 'score trn hypotheses against references (WER/PER), sclite summary table by speaker',
  options: scoreOptions,
  cli: {
    ref: z
      .string()
      .describe('reference transcripts, sclite trn "words (utt)"; the speaker is the id up to the first - (else _)'),
    hyp: z.string().describe('hypotheses, sclite trn (ktp decode -o)'),
  },
  examples: [
    ['ktp score --ref data/test/ref.trn --hyp exp/hyp.trn', 'word error rate, per speaker and overall'],
    [
      'ktp score --ref data/test/ref.trn --hyp exp/hyp.trn --map timit39 --json',
      'TIMIT phone error rate on 39 classes, as JSON',
    ],
  ],
  run: ({ options, ...files }) => printScore(options, files),
})
