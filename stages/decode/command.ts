import { once } from 'node:events'
import { z } from 'zod'
import { defineCommand } from '../../pipeline/io/command.js'
import { parseOptions } from '../../pipeline/io/options.js'
import { writeFileAtomic } from '../../pipeline/io/atomic-file.js'
import { arrowInput, drain } from '../../pipeline/io/run-stage.js'
import { UttError } from '../../schemas/errors.js'
import { decodeGraph, decodeOptions, decodeStage, estimateLm } from './stage.js'
import { readHmm } from '../hmm/model.js'
import { scoresReader } from '../hmm/soft-scores.js'
import { formatCtm, formatTrn, parseSentences, readText } from '../formats/transcripts.js'

const decodeCli = z.object({
  hmm: z.string().describe('HMM model file (ktp hmm-init / ktp hmm-update)'),
  lmText: z
    .string()
    .optional()
    .describe('LM training text: Kaldi "text" (utt word ...) or sclite trn (word ... (utt))'),
  output: z
    .string()
    .default('-')
    .describe('hypotheses as sclite trn "words (utt)", or - for stdout; a file is written whole at the end'),
  ctmOut: z.string().optional().describe("also write the hypotheses' word segments as a CTM file (seconds)"),
  quiet: z.boolean().default(false).describe('no summary on stderr (warnings are still printed)'),
})

export const decodeCommand = defineCommand({
  command: 'decode [scores]',
  describe:
    'Viterbi beam-search decoding of network log-posteriors over a word/phone loop with an LM; writes sclite trn',
  options: decodeOptions,
  cliOptions: decodeCli,
  positionals: (y) =>
    y.positional('scores', {
      describe: 'soft-dense@1 log-posteriors (ktp infer --dense), file or - for stdin',
      type: 'string',
      default: '-',
    }),
  examples: [
    [
      'ktp infer --model exp/dnn --dense exp/test-feats.arrow | ktp decode --hmm exp/hmm.json --lm bigram --lm-text data/train/text - -o exp/hyp.trn',
      'decode a test set',
    ],
    [
      'ktp decode --hmm exp/hmm.json --lm uniform --insertion-penalty -2 exp/dev-logp.arrow -o exp/dev.trn',
      'a digit loop with a uniform LM',
    ],
  ],
  run: async (opts, argv) => {
    const a = parseOptions(decodeCli, argv)
    const log = (l: string) => process.stderr.write(`${l}\n`)
    const model = readHmm(a.hmm)
    const sentences = a.lmText ? parseSentences(readText(a.lmText, '--lm-text')) : null
    const lm = estimateLm(model, opts, sentences, a.lmText ?? '')
    const input = await arrowInput(String(argv.scores ?? '-'), ['soft-dense'])
    const scores = scoresReader(input.schema, input.name, model, opts)
    if (scores.flatPriors && opts.usePriors)
      log(`ktp decode: note: ${a.hmm} has no priors; decoding unnormalised posteriors (add them with ktp hmm-update)`)
    const graph = decodeGraph(model, lm, opts)

    const toStdout = a.output === '-'
    let pipeClosed = false
    if (toStdout)
      process.stdout.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'EPIPE') pipeClosed = true
        else throw e
      })
    const trn: string[] = []
    const ctm: string[] = []
    const seen = new Set<string>()
    let done = 0,
      failed = 0,
      frames = 0,
      searchMs = 0
    const t0 = performance.now()
    const warn = (msg: string) => log(`ktp decode: WARNING ${msg}`)
    await drain(
      decodeStage({ model, graph, options: opts, scores })(input.stream()),
      async (h) => {
        if (seen.has(h.utt)) {
          failed++
          warn(`${h.utt}: utterance id appears twice in ${input.name}; the second is skipped`)
          return
        }
        seen.add(h.utt)
        if (!h.reachedFinal)
          warn(
            `${h.utt}: no final state survived the beam; writing the best partial path (widen --beam or --max-active)`,
          )
        done++
        frames += h.frames
        searchMs += h.searchMs
        const line = formatTrn(h.utt, h.words)
        if (a.ctmOut) ctm.push(formatCtm(h.utt, h.segments, opts.frameShift))
        if (!toStdout) trn.push(line)
        else if (!pipeClosed && !process.stdout.write(line))
          await Promise.race([once(process.stdout, 'drain'), once(process.stdout, 'close')])
      },
      (err) => {
        if (!(err instanceof UttError)) return false
        failed++
        warn(err.message)
        return true
      },
      () => pipeClosed,
    )
    // files appear whole or not at all: a failed run leaves the previous ones untouched
    if (!toStdout) writeFileAtomic(a.output, trn.join(''))
    if (a.ctmOut) writeFileAtomic(a.ctmOut, ctm.join(''))
    if (!a.quiet) {
      const audio = (frames * opts.frameShift) / 1000
      const wall = (performance.now() - t0) / 1000
      const rtf = (x: number) => (audio > 0 ? (x / audio).toPrecision(3) : 'n/a')
      log(
        `ktp decode: done ${done}, failed ${failed}; ${audio.toFixed(2)} s of audio in ${wall.toFixed(2)} s, real-time factor ${rtf(wall)} (search alone ${rtf(searchMs / 1000)})`,
      )
    } else if (failed > 0) {
      log(`ktp decode: done ${done}, failed ${failed}`)
    }
    return failed > 0 ? 1 : 0
  },
})
