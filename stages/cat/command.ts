import { defineCommand, runOptions } from '../../pipeline/io/command.js'
import { arrowInput, drain, runStage } from '../../pipeline/io/run-stage.js'
import { parseShard, inShard } from '../../pipeline/io/shard.js'
import { batchToKaldiText, catOptions, concatInputs, uttSelector } from './stage.js'
import { KtpError } from '../../schemas/errors.js'
import { uttId } from '../../schemas/utterance.js'
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'

export const catCommand = defineCommand({
  command: 'cat <inputs..>',
  describe: 'concatenate, select or shard ktp Arrow files/streams (or print them as Kaldi text)',
  options: catOptions,
  cliOptions: runOptions,
  positionals: (y) => y.positional('inputs', { describe: 'Arrow files, or - for stdin', type: 'string', array: true }),
  examples: [
    ['ktp cat a.arrow b.arrow -o ab.arrow', 'join two feature files'],
    ['ktp cat feats.arrow --shard 2/4 | ktp info -', 'the second of four shards, on a pipe'],
    ['ktp cat feats.arrow --format kaldi-text | copy-feats ark,t:- ark:feats.ark', 'hand features to Kaldi'],
  ],
  run: async (opts, argv) => {
    const names = (argv.inputs as string[]).map(String)
    if (names.filter((n) => n === '-').length > 1) throw new KtpError('usage', 'stdin (-) can be given only once')
    const { input, sameValues } = concatInputs(await Promise.all(names.map((n) => arrowInput(n, []))))
    const shard = argv.shard ? parseShard(String(argv.shard)) : null
    const select = uttSelector(opts.utts)
    const output = String(argv.output ?? '-')
    if (opts.format === 'kaldi-text') {
      const out = output === '-' ? process.stdout : createWriteStream(output)
      const s = input.stream().filter((b) => {
        const u = uttId(b)
        return inShard(u, shard) && (!select || select(u))
      })
      await drain(
        s,
        async (b) => {
          if (!out.write(batchToKaldiText(b, opts.column))) await once(out, 'drain')
        },
        () => false,
      )
      if (out !== process.stdout) await new Promise<void>((r) => (out as NodeJS.WritableStream).end(() => r()))
      return 0
    }
    const r = await runStage({
      stage: 'cat',
      options: {},
      selection: { utts: opts.utts ?? null },
      select,
      preserveMeta: sameValues,
      input,
      schema: input.schema,
      transform: (s) => s,
      output,
      shard,
      force: Boolean(argv.force),
      quiet: Boolean(argv.quiet),
    })
    return r.exitCode
  },
})
