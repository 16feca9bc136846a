import { defineCommand } from '../../pipeline/io/command.js'
import { trainCliOptions } from '../train/options.js'
import { runTrainStudent, studentOptions } from './stage.js'

export const trainStudentCommand = defineCommand({
  command: 'train-student',
  describe: 'train a student (LSTM, GRU, TDNN, … or any model config): baseline, kt, regularise or layerwise-kt',
  options: studentOptions,
  cli: trainCliOptions.shape,
  examples: [
    [
      'ktp train-student --mode kt --soft exp/soft.arrow --feats exp/train.arrow --labels exp/ali.arrow -o exp/lstm-kt',
      'KT pre-training, then fine-tuning',
    ],
    [
      'ktp train-student --mode baseline --feats exp/train.arrow --labels exp/ali.arrow -o exp/lstm',
      'the randomly initialised baseline',
    ],
  ],
  run: ({ options, ...cli }) => runTrainStudent(options, cli, (l) => process.stderr.write(`${l}\n`)),
})
