import { z } from 'zod'
import { defineCommand } from '../../pipeline/io/command.js'
import { openArrow } from '../../pipeline/io/arrow-source.js'
import { formatInfo, infoOptions, summarize } from './stage.js'

export const infoCommand = defineCommand({
  command: 'info <input>',
  describe: 'show the kind, provenance, utterance/frame counts and dims of a ktp Arrow file or stream',
  options: infoOptions,
  cliOptions: z.object({}),
  positionals: (y) => y.positional('input', { describe: 'Arrow file, or - for stdin', type: 'string' }),
  examples: [
    ['ktp info exp/feats.arrow', 'summarise a feature file'],
    ['ktp cat exp/feats.arrow --shard 1/4 | ktp info - --json', 'count the utterances of one shard'],
  ],
  run: async (opts, argv) => {
    const report = await summarize(await openArrow(String(argv.input), []))
    process.stdout.write(opts.json ? `${JSON.stringify(report)}\n` : formatInfo(report))
    return 0
  },
})
