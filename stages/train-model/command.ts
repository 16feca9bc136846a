import { defineCommand } from '../../pipeline/io/command.js'
import { TRAIN, runMethod } from '../train/method.js'
import { methodTrainOptions, trainCliOptions } from '../train/options.js'

export const trainCommand = defineCommand({
  command: 'train',
  describe:
    'train any model config (DNN, LSTM, GRU, TDNN, …) on features + frame labels: baseline, kt, regularise or layerwise-kt',
  options: methodTrainOptions,
  cli: trainCliOptions.shape,
  examples: [
    [
      'ktp train --feats exp/train.arrow --labels exp/ali.arrow --model \'{"type":"lstm","cells":256}\' -o exp/lstm',
      'an LSTM on hard labels',
    ],
    [
      'ktp train --mode kt --soft exp/soft.arrow --feats exp/train.arrow --labels exp/ali.arrow --model \'{"type":"tdnn","hidden":[256,256],"offsets":[[-2,-1,0,1,2],[-3,0,3]]}\' -o exp/tdnn-kt',
      'a TDNN: KT pre-training, then fine-tuning',
    ],
  ],
  run: ({ options, ...cli }) => runMethod(TRAIN, options, cli, (l) => process.stderr.write(`${l}\n`)),
})
