import { parseOptions } from '../../pipeline/io/options.js'
import { defineCommand } from '../../pipeline/io/command.js'
import { trainCliOptions } from '../train/options.js'
import { runTrainTeacher, teacherOptions } from './stage.js'

export const trainTeacherCommand = defineCommand({
  command: 'train-teacher',
  describe: 'train a DNN teacher on spliced frames, optionally RBM- or discriminatively pre-trained layer by layer',
  options: teacherOptions,
  cliOptions: trainCliOptions,
  positionals: (y) => y.demandOption('output'),
  examples: [
    [
      'ktp train-teacher --feats exp/train.arrow --labels exp/ali.arrow --pretrain rbm --context 5 -o exp/dnn-rbm',
      'Kaldi-style DBN pre-training, then fine-tuning',
    ],
  ],
  run: async (o, argv) =>
    runTrainTeacher(o, parseOptions(trainCliOptions, argv), (l) => process.stderr.write(`${l}\n`)),
})
