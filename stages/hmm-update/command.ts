import { z } from 'zod'
import { defineCommand } from '../../pipeline/io/command.js'
import { parseOptions } from '../../pipeline/io/options.js'
import { openArrow } from '../../pipeline/io/arrow-source.js'
import { drain } from '../../pipeline/io/run-stage.js'
import { KTP_VERSION } from '../../pipeline/io/version.js'
import { KtpError } from '../../schemas/errors.js'
import { readHmm, writeHmm } from '../hmm/model.js'
import { LabelCounts, checkLabelsSchema, hmmUpdateOptions, updateHmm } from './stage.js'

const hmmUpdateCli = z.object({
  hmm: z.string().describe('the HMM model the labels were made with'),
  output: z.string().describe('the updated HMM model file (may be the same as --hmm; written atomically)'),
})

export const hmmUpdateCommand = defineCommand({
  command: 'hmm-update <labels..>',
  describe: 're-estimate the priors and transition probabilities of an HMM model from frame labels',
  options: hmmUpdateOptions,
  cliOptions: hmmUpdateCli,
  positionals: (y) =>
    y.positional('labels', {
      describe: 'labels@1 files (ktp align output), or - for stdin',
      type: 'string',
      array: true,
    }),
  examples: [
    [
      'ktp hmm-update --hmm exp/hmm0.json exp/ali0.arrow -o exp/hmm1.json',
      'priors and transitions from a flat-start alignment',
    ],
  ],
  run: async (opts, argv) => {
    const a = parseOptions(hmmUpdateCli, argv)
    if (a.output === '-') throw new KtpError('usage', '--output: hmm-update writes a file, got -')
    const model = readHmm(a.hmm)
    const counts = new LabelCounts(model.units.numPdfs)
    for (const name of (argv.labels as unknown[]).map(String)) {
      const src = await openArrow(name, ['labels'])
      checkLabelsSchema(src.schema, src.name, model)
      await drain(
        src.stream(),
        (b) => counts.add(b, src.name),
        () => false,
      )
    }
    const updated = updateHmm(model, counts, opts)
    writeHmm(a.output, updated, { stage: 'hmm-update', options: opts, from: a.hmm, ktp_version: KTP_VERSION })
    process.stderr.write(
      `ktp hmm-update: ${counts.alignments.length} utterances, ${counts.frames} frames; wrote ${a.output}\n`,
    )
    return 0
  },
})
