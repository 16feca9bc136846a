import { z } from 'zod'
import { defineCommand, runOptions } from '../../pipeline/io/command.js'
import { arrowInput, runStage } from '../../pipeline/io/run-stage.js'
import { parseShard } from '../../pipeline/io/shard.js'
import { BACKEND_NAMES, type BackendName } from '../nn/backend.js'
import { loadModel } from '../train/model-store.js'
import { useBackend } from '../train/session.js'
import { featureFingerprintOf, inferOptions, inferSchema, inferStage } from './stage.js'

export const inferCommand = defineCommand({
  command: 'infer <input>',
  describe: 'run a teacher over features and write its soft targets (dense or top-k, f32/f16)',
  options: inferOptions,
  cliOptions: runOptions.extend({
    model: z.string().describe('trained model directory (ktp.json + params.bin)'),
    backend: z
      .enum(BACKEND_NAMES as unknown as [BackendName, ...BackendName[]])
      .default('auto')
      .describe('tfjs backend'),
  }),
  positionals: (y) =>
    y.positional('input', { describe: 'features (Arrow file, or - for stdin)', type: 'string' }).demandOption('model'),
  examples: [
    ['ktp infer --model exp/dnn exp/train.arrow --top-k 32 -o exp/soft.arrow', 'top-32 f16 soft targets'],
    [
      'ktp cmvn apply --stats exp/cmvn.json feats.arrow | ktp infer --model exp/dnn - --top-k 0 --dtype f32 | ktp decode --hmm exp/hmm.json -',
      'dense log-probabilities into a decoder',
    ],
  ],
  run: async (o, argv) => {
    const log = (l: string) => process.stderr.write(`${l}\n`)
    const { model, meta } = loadModel(String(argv.model))
    const input = await arrowInput(String(argv.input), ['features'])
    await useBackend(argv.backend as BackendName, log)
    const schema = inferSchema(meta, o, featureFingerprintOf(input.schema))
    const r = await runStage({
      stage: 'infer',
      options: { ...o, teacher: meta.fingerprint, batchUtts: undefined },
      input,
      schema,
      transform: inferStage(model, meta, schema, o),
      output: String(argv.output),
      shard: argv.shard ? parseShard(String(argv.shard)) : null,
      force: Boolean(argv.force),
      quiet: Boolean(argv.quiet),
    })
    return r.exitCode
  },
})
