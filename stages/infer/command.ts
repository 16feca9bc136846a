import { z } from 'zod'
import { defineArrowStage } from '../../pipeline/io/command.js'
import { BACKEND_NAMES } from '../nn/index.js'
import { type InferBackend, inferOptions, planInfer } from './stage.js'

export const inferCommand = defineArrowStage({
  command: 'infer <input>',
  describe: 'run a teacher over features and write its soft targets (dense or top-k, f32/f16)',
  accepts: ['features'],
  options: inferOptions,
  cli: {
    model: z.string().describe('trained model directory (ktp.json + params.bin)'),
    backend: z
      .enum([...BACKEND_NAMES, 'onnxruntime'] as unknown as [InferBackend, ...InferBackend[]])
      .default('auto')
      .describe('tfjs backend, or onnxruntime (DNN teachers; needs the optional package onnxruntime-node)'),
  },
  positionals: { input: z.string().describe('features (Arrow file, or - for stdin)') },
  examples: [
    ['ktp infer --model exp/dnn exp/train.arrow --top-k 32 -o exp/soft.arrow', 'top-32 f16 soft targets'],
    [
      'ktp cmvn apply --stats exp/cmvn.json feats.arrow | ktp infer --model exp/dnn - --top-k 0 --dtype f32 | ktp decode --hmm exp/hmm.json -',
      'dense log-probabilities into a decoder',
    ],
  ],
  plan: ({ options, model, backend }, open) => planInfer(options, { model, backend }, open),
})
