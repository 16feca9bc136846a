import { statSync } from 'node:fs'
import { z } from 'zod'
import { defineCommand, runOptions } from '../../pipeline/io/command.js'
import { parseOptions } from '../../pipeline/io/options.js'
import { arrowInput, runStage, type StageInput } from '../../pipeline/io/run-stage.js'
import { parseShard } from '../../pipeline/io/shard.js'
import { KtpError } from '../../schemas/errors.js'
import { FeaturePool } from '../dsp/features-worker.js'
import {
  featurePlan,
  featuresOptions,
  featuresSchema,
  featuresStage,
  inlineRunner,
  probeSampleRate,
  valueOptions,
} from './stage.js'
import { dataDirInput } from '../formats/kaldi-datadir.js'

const featuresCliOptions = runOptions.extend({
  jobs: z
    .number()
    .int()
    .min(1)
    .max(64)
    .default(1)
    .describe('worker threads computing utterances in parallel; the output is the same for any value'),
  allowCommands: z
    .boolean()
    .default(false)
    .describe(
      'run wav.scp entries that are commands (`cmd |`); they run with sh -c as written, so only for data dirs you trust',
    ),
})

/** A data dir (its manifest rows and content fingerprint), or a manifest@1 Arrow file / stdin. */
async function openInput(src: string, allowCommands: boolean): Promise<StageInput> {
  let isDir = false
  try {
    isDir = src !== '-' && statSync(src).isDirectory()
  } catch {
    throw new KtpError('no-file', `${src}: no such data dir or manifest file`)
  }
  if (!isDir) return arrowInput(src, ['manifest'])
  const input = await dataDirInput(src, { allowCommands })
  for (const w of input.warnings) process.stderr.write(`ktp features: WARNING ${w}\n`)
  if (input.total === 0) {
    throw new KtpError(
      'empty',
      `${src}: the data dir has no utterances (${input.data.segments ? 'segments' : 'wav.scp'} is empty); nothing to compute`,
    )
  }
  return input
}

export const featuresCommand = defineCommand({
  command: 'features <input>',
  describe: 'Kaldi fbank/MFCC features of a data dir or manifest stream (Kaldi option names, seeded dither)',
  options: featuresOptions,
  cliOptions: featuresCliOptions,
  positionals: (y) =>
    y.positional('input', {
      describe: 'Kaldi data dir, manifest@1 Arrow file, or - for a manifest stream on stdin',
      type: 'string',
    }),
  examples: [
    ['ktp features data/train --num-mel-bins 40 -o exp/fbank/train.arrow', '40 log mel bins, Kaldi defaults otherwise'],
    ['ktp features data/train --type mfcc --dither 0 --jobs 2 -o exp/mfcc/train.arrow', 'exact MFCCs on two threads'],
    ['ktp features data/train --shard 3/8 -o exp/fbank/train.3.arrow', 'the third of eight jobs (then ktp merge)'],
    ['ktp features data/8k --sample-frequency 16000 --resample -o f.arrow', 'resample 8 kHz audio to 16 kHz'],
  ],
  run: async (opts, argv) => {
    const cli = parseOptions(featuresCliOptions, argv)
    let input = await openInput(String(argv.input), cli.allowCommands)
    let rate: number | undefined
    if (opts.sampleFrequency === undefined) {
      const probe = await probeSampleRate(input, { channel: opts.channel, allowCommands: cli.allowCommands })
      input = probe.input
      rate = probe.rate ?? 16000
      process.stderr.write(
        probe.rate
          ? `ktp features: --sample-frequency ${rate} (the rate of the audio)\n`
          : `ktp features: WARNING none of the first utterances' audio reads; using Kaldi's default --sample-frequency ${rate}\n`,
      )
    }
    const plan = featurePlan(opts, rate)
    const schema = featuresSchema(plan)
    // --jobs 1 computes on this thread; more start a pool. Same code, same values either way.
    const pool = cli.jobs > 1 ? new FeaturePool(cli.jobs, plan, cli.allowCommands) : null
    try {
      const run = pool ? pool.run : inlineRunner({ plan, allowCommands: cli.allowCommands })
      const r = await runStage({
        stage: 'features',
        options: valueOptions(plan),
        // Refused commands fail their utterances; allowing them must rebuild the output.
        selection: { allowCommands: cli.allowCommands },
        input,
        schema,
        transform: featuresStage(schema, run, pool ? pool.inFlight : 2),
        output: cli.output,
        shard: cli.shard ? parseShard(cli.shard) : null,
        force: cli.force,
        quiet: cli.quiet,
      })
      return r.exitCode
    } finally {
      await pool?.close()
    }
  },
})
