import { z } from 'zod'
import { defineCommand } from '../../pipeline/io/command.js'
import { KtpError } from '../../schemas/errors.js'
import { PREPARE_FORMATS, prepare, prepareOptions } from './stage.js'

export const prepareCommand = defineCommand({
  command: 'prepare <format> <src>',
  describe: `make Kaldi data dir(s) from a corpus (${PREPARE_FORMATS.join(', ')})`,
  options: prepareOptions,
  cliOptions: z.object({
    output: z
      .string()
      .optional()
      .describe('the data dir to write (DATADIR, or DATADIR/train + DATADIR/test when split)'),
  }),
  positionals: (y) =>
    y
      .positional('format', { describe: `corpus format: ${PREPARE_FORMATS.join(' | ')}`, type: 'string' })
      .positional('src', { describe: 'corpus folder (kaldi: a data dir; tsv: the .tsv file)', type: 'string' }),
  examples: [
    ['ktp prepare fsdd ../shared/data/fsdd -o data/fsdd', 'all of FSDD in one data dir'],
    [
      'ktp prepare fsdd ../shared/data/fsdd -o data/fsdd --test-speakers theo',
      'data/fsdd/train and data/fsdd/test, split by speaker',
    ],
    [
      'ktp prepare timit /corpora/TIMIT -o data/timit --skip-sa',
      'TIMIT with its own TRAIN/TEST division, phones.ctm from .PHN',
    ],
    ['ktp prepare kaldi data/train -o data/train', 'validate and normalise a Kaldi data dir in place'],
  ],
  run: async (opts, argv) => {
    const out = argv.output as string | undefined
    if (!out) throw new KtpError('usage', 'give the data dir to write with -o DATADIR')
    const { parts, warnings } = prepare(String(argv.format), String(argv.src), out, opts)
    for (const w of warnings) process.stderr.write(`ktp prepare: WARNING ${w}\n`)
    for (const p of parts) {
      const wrote = p.written.filter((n) => !n.startsWith('-'))
      const removed = p.written.filter((n) => n.startsWith('-')).map((n) => n.slice(1))
      const what =
        [wrote.length ? `wrote ${wrote.join(' ')}` : '', removed.length ? `removed stale ${removed.join(' ')}` : '']
          .filter(Boolean)
          .join('; ') || 'up to date'
      process.stderr.write(`ktp prepare: ${p.dir}: ${p.utterances} utterances, ${p.speakers} speakers (${what})\n`)
    }
    return 0
  },
})
