import { defineCommand, runOptions } from '../../pipeline/io/command.js'
import { arrowInput, runStage } from '../../pipeline/io/run-stage.js'
import { parseShard } from '../../pipeline/io/shard.js'
import { columnWidth, makeSchema } from '../../schemas/kinds.js'
import { spliceContext, spliceOptions, spliceStage } from './stage.js'

export const spliceCommand = defineCommand({
  command: 'splice [input]',
  describe: 'stack each frame with its neighbours (Kaldi splice-feats; edge frames repeated)',
  options: spliceOptions,
  cliOptions: runOptions,
  positionals: (y) =>
    y.positional('input', { describe: 'features Arrow file, or - for stdin (default)', type: 'string', default: '-' }),
  examples: [
    [
      'ktp cmvn apply --stats exp/cmvn.json exp/feats.arrow | ktp splice --context 5 | ktp info -',
      '23-dim fbank → 253-dim input',
    ],
    ['ktp splice exp/feats.arrow --left 3 --right 1 -o exp/spliced.arrow', 'asymmetric context'],
  ],
  run: async (opts, argv) => {
    const { left, right } = spliceContext(opts)
    const input = await arrowInput(String(argv.input ?? '-'), ['features'])
    const dim = columnWidth(input.schema, 'feats')
    const r = await runStage({
      stage: 'splice',
      options: { left, right },
      input,
      schema: makeSchema('features', { widths: { feats: dim * (left + right + 1) } }),
      transform: spliceStage(dim, left, right),
      output: String(argv.output ?? '-'),
      shard: argv.shard ? parseShard(String(argv.shard)) : null,
      force: Boolean(argv.force),
      quiet: Boolean(argv.quiet),
    })
    return r.exitCode
  },
})
