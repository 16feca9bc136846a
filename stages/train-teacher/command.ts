import { defineCommand } from '../../pipeline/io/command.js'
import { trainCliOptions } from '../train/options.js'
import { runTrainTeacher, teacherOptions } from './stage.js'

export const trainTeacherCommand = defineCommand({
  command: 'train-teacher',
  describe: 'train a DNN teacher on spliced frames, optionally RBM- or discriminatively pre-trained layer by layer',
  options: teacherOptions,
  cli: trainCliOptions.shape,
  examples: [
    [
      'ktp train-teacher --feats exp/train.arrow --labels exp/ali.arrow --pretrain rbm --context 5 -o exp/dnn-rbm',
      'Kaldi-style DBN pre-training, then fine-tuning',
    ],
  ],
  run: ({ options, ...cli }) => runTrainTeacher(options, cli, (l) => process.stderr.write(`${l}\n`)),
})
