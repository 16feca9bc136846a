import { readFileSync } from 'node:fs'
import type { Argv, CommandModule } from 'yargs'
import { z } from 'zod'
import { defineCommand, runOptions } from '../../pipeline/io/command.js'
import { writeFileAtomic } from '../../pipeline/io/atomic-file.js'
import { arrowInput, runStage } from '../../pipeline/io/run-stage.js'
import { parseShard } from '../../pipeline/io/shard.js'
import { KtpError } from '../../schemas/errors.js'
import { columnWidth, makeSchema } from '../../schemas/kinds.js'
import { cmvnApplyOptions, cmvnApplyStage, cmvnComputeOptions, computeCmvn, planApply, statsToJson } from './stage.js'

const computeCommand = defineCommand({
  command: 'compute <input>',
  describe: 'accumulate CMVN statistics (count, sum, sum of squares per dimension) into a JSON file',
  options: cmvnComputeOptions,
  cliOptions: z.object({
    output: z.string().optional().describe('statistics JSON to write (written atomically), or - for stdout'),
  }),
  positionals: (y) => y.positional('input', { describe: 'features Arrow file, or - for stdin', type: 'string' }),
  examples: [
    ['ktp cmvn compute exp/feats.arrow -o exp/cmvn.json', 'global statistics'],
    [
      'ktp cmvn compute exp/feats.arrow --mode speaker --data data/train -o exp/cmvn-spk.json',
      'per-speaker statistics',
    ],
  ],
  run: async (opts, argv) => {
    const out = argv.output as string | undefined
    if (!out) throw new KtpError('usage', 'give the statistics file to write with -o STATS.json (or -o - for stdout)')
    const input = await arrowInput(String(argv.input), ['features'])
    const dim = columnWidth(input.schema, 'feats')
    const r = await computeCmvn(input, dim, opts, (e) =>
      process.stderr.write(`ktp cmvn compute: WARNING ${e.message}\n`),
    )
    const json = statsToJson(r.stats)
    if (out === '-') process.stdout.write(json)
    else writeFileAtomic(out, json)
    process.stderr.write(
      `ktp cmvn compute: done ${r.done}, failed ${r.failed} (${Object.keys(r.stats.stats).length} ${r.stats.mode} entries)\n`,
    )
    return r.failed > 0 ? 1 : 0
  },
})

const applyCommand = defineCommand({
  command: 'apply <input>',
  describe: 'normalise features with CMVN statistics (x − mean, optionally / stddev)',
  options: cmvnApplyOptions,
  cliOptions: runOptions,
  positionals: (y) => y.positional('input', { describe: 'features Arrow file, or - for stdin', type: 'string' }),
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
  run: async (opts, argv) => {
    let statsText: string | null = null
    if (opts.stats) {
      try {
        statsText = readFileSync(opts.stats, 'utf8')
      } catch {
        throw new KtpError('no-file', `--stats: cannot read ${opts.stats}`)
      }
    }
    const plan = planApply(opts, statsText)
    const input = await arrowInput(String(argv.input), ['features'])
    const dim = columnWidth(input.schema, 'feats')
    if (plan.stats && plan.stats.dim !== dim) {
      throw new KtpError(
        'dim-mismatch',
        `${opts.stats} holds ${plan.stats.dim}-dimensional statistics but ${input.name} has ${dim}-dimensional features`,
      )
    }
    const r = await runStage({
      stage: 'cmvn-apply',
      options: plan.fingerprintOptions,
      input,
      schema: makeSchema('features', { widths: { feats: dim } }),
      transform: cmvnApplyStage(plan, dim),
      output: String(argv.output ?? '-'),
      shard: argv.shard ? parseShard(String(argv.shard)) : null,
      force: Boolean(argv.force),
      quiet: Boolean(argv.quiet),
    })
    return r.exitCode
  },
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
