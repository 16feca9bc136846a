import { z } from 'zod'
import { defineCommand } from '../../pipeline/io/command.js'
import { runTrain, trainOptions } from '../train/session.js'

export const trainCliOptions = z.object({
  output: z.string().describe('model directory to write (ktp.json, params.bin, train.jsonl)'),
  resume: z.boolean().default(false).describe('continue from the last checkpoint in the output directory'),
  force: z.boolean().default(false).describe('train even if the model is up to date'),
})

export const trainCommand = defineCommand({
  command: 'train',
  describe: 'train any model config (DNN, LSTM, GRU, …) on features + frame labels, optionally with soft targets',
  options: trainOptions.extend({
    soft: z.string().optional().describe('soft-target file from ktp infer (for --mode kt|regularise)'),
    mode: z
      .enum(['ce', 'kt', 'regularise'])
      .default('ce')
      .describe('ce: hard labels; kt: T²·KL to soft targets; regularise: α·CE + (1−α)·T²·KL'),
    temperature: z.number().positive().default(2).describe('temperature T of the soft targets and the student'),
    alpha: z.number().min(0).max(1).default(0.5).describe('--mode regularise: weight of the hard-label term'),
  }),
  cliOptions: trainCliOptions,
  positionals: (y) => y.demandOption('output'),
  examples: [
    [
      'ktp train --feats exp/train.arrow --labels exp/ali.arrow --model \'{"type":"lstm","cells":256}\' -o exp/lstm',
      'an LSTM on hard labels',
    ],
  ],
  run: async (o, argv) => {
    const log = (l: string) => process.stderr.write(`${l}\n`)
    const { soft, mode, temperature, alpha, ...base } = o
    return runTrain(
      base,
      String(argv.output),
      Boolean(argv.resume),
      Boolean(argv.force),
      log,
      mode === 'ce' ? {} : { soft, mode, temperature, alpha: mode === 'regularise' ? alpha : undefined },
    )
  },
})
