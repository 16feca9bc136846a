import { z } from 'zod'
import { defineCommand, runOptions } from '../../pipeline/io/command.js'
import { arrowInput, runStage } from '../../pipeline/io/run-stage.js'
import { concatInputs } from '../cat/stage.js'
import { mergeSorted } from './stage.js'

export const mergeCommand = defineCommand({
  command: 'merge <inputs..>',
  describe: 'merge the parts written by --shard i/N jobs into one file sorted by utterance id',
  options: z.object({}),
  cliOptions: runOptions.omit({ shard: true }),
  positionals: (y) =>
    y.positional('inputs', { describe: 'part files (each sorted by utterance id)', type: 'string', array: true }),
  examples: [['ktp merge exp/feats.{1..4}.arrow -o exp/feats.arrow', 'join four feature shards']],
  run: async (_opts, argv) => {
    const parts = await Promise.all((argv.inputs as string[]).map((n) => arrowInput(String(n), [])))
    const { input, sameValues } = concatInputs(parts)
    const r = await runStage({
      stage: 'merge',
      options: {},
      preserveMeta: sameValues,
      input: { ...input, stream: () => mergeSorted(parts) },
      schema: input.schema,
      transform: (s) => s,
      output: String(argv.output ?? '-'),
      force: Boolean(argv.force),
      quiet: Boolean(argv.quiet),
    })
    return r.exitCode
  },
})
