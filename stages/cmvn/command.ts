import type { Argv, CommandModule } from 'yargs'
import { z } from 'zod'
import { defineArrowStage, defineCommand } from '../../pipeline/io/command.js'
import { cmvnApplyOptions, cmvnCompute, cmvnComputeOptions, planCmvnApply } from './stage.js'

const computeCommand = defineCommand({
  command: 'compute <input>',
  describe: 'accumulate CMVN statistics (count, sum, sum of squares per dimension) into a JSON file',
  options: cmvnComputeOptions,
  cli: {
    output: z.string().optional().describe('statistics JSON to write (written atomically), or - for stdout'),
  },
  positionals: { input: z.string().describe('features Arrow file, or - for stdin') },
  examples: [
    ['ktp cmvn compute exp/feats.arrow -o exp/cmvn.json', 'global statistics'],
    [
      'ktp cmvn compute exp/feats.arrow --mode speaker --data data/train -o exp/cmvn-spk.json',
      'per-speaker statistics',
    ],
  ],
  run: cmvnCompute,
})

const applyCommand = defineArrowStage({
  command: 'apply <input>',
  describe: 'normalise features with CMVN statistics (x − mean, optionally / stddev)',
  accepts: ['features'],
  options: cmvnApplyOptions,
  positionals: { input: z.string().describe('features Arrow file, or - for stdin') },
  examples: [
    [
      'ktp cmvn apply --stats exp/cmvn.json exp/feats.arrow | ktp splice --context 5 | ktp info -',
      'normalise, splice, summarise',
    ],
    [
      'ktp cmvn apply --mode utterance --norm-vars exp/feats.arrow -o exp/feats-cmvn.arrow',
      'per-utterance CMVN, no stats file',
    ],
  ],
  plan: ({ options }, open) => planCmvnApply(options, open),
})

/** `ktp cmvn compute|apply`: a command group, like Kaldi's compute-cmvn-stats / apply-cmvn pair. */
export const cmvnCommand: CommandModule = {
  command: 'cmvn <action>',
  describe: 'cepstral mean/variance normalisation: compute statistics, apply them',
  builder: (y: Argv) =>
    y
      .command(computeCommand)
      .command(applyCommand)
      .demandCommand(1, 'give an action: ktp cmvn compute | ktp cmvn apply'),
  handler: () => {},
}
