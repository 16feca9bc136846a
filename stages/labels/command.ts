import { defineArrowStage } from '../../pipeline/io/command.js'
import { labelsOptions, planLabels } from './stage.js'

export const labelsCommand = defineArrowStage({
  command: 'labels',
  describe: 'frame-level hard targets (labels@1) from a CTM alignment or Kaldi alignment text',
  accepts: ['features'],
  options: labelsOptions,
  examples: [
    [
      'ktp labels --ctm data/timit/train/phones.ctm --map timit48 --feats exp/train.arrow -o exp/train.labels.arrow',
      'TIMIT 48-phone frame targets',
    ],
    [
      'ktp labels --ali exp/ali.txt --inventory exp/pdfs.txt --feats exp/train.arrow -o exp/ali.arrow',
      'targets from a Kaldi alignment',
    ],
  ],
  plan: ({ options, output }, open) => planLabels(options, output, open),
})
