import { z } from 'zod'
import { defineCommand } from '../../pipeline/io/command.js'
import { PREPARE_FORMATS, prepareCorpus, prepareOptions } from './stage.js'

export const prepareCommand = defineCommand({
  command: 'prepare <format> <src>',
  describe: `make Kaldi data dir(s) from a corpus (${PREPARE_FORMATS.join(', ')})`,
  options: prepareOptions,
  cli: {
    output: z
      .string()
      .optional()
      .describe('the data dir to write (DATADIR, or DATADIR/train + DATADIR/test when split)'),
  },
  positionals: {
    // a string, not an enum: prepare() names the formats it knows when given another
    format: z.string().describe(`corpus format: ${PREPARE_FORMATS.join(' | ')}`),
    src: z.string().describe('corpus folder (kaldi: a data dir; tsv: the .tsv file)'),
  },
  examples: [
    ['ktp prepare fsdd fixtures/fsdd -o data/fsdd', 'all of FSDD (the copy bundled with ktp) in one data dir'],
    [
      'ktp prepare fsdd fixtures/fsdd -o data/fsdd --test-speakers theo',
      'data/fsdd/train and data/fsdd/test, split by speaker',
    ],
    [
      'ktp prepare timit /corpora/TIMIT -o data/timit --skip-sa',
      'TIMIT with its own TRAIN/TEST division, phones.ctm from .PHN',
    ],
    ['ktp prepare kaldi data/train -o data/train', 'validate and normalise a Kaldi data dir in place'],
  ],
  run: ({ options, ...where }) => prepareCorpus(options, where),
})
