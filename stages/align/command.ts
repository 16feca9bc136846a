import { existsSync } from 'node:fs'
import { z } from 'zod'
import { defineCommand, runOptions } from '../../pipeline/io/command.js'
import { parseOptions } from '../../pipeline/io/options.js'
import { writeFileAtomic } from '../../pipeline/io/atomic-file.js'
import { arrowInput, runStage } from '../../pipeline/io/run-stage.js'
import { parseShard } from '../../pipeline/io/shard.js'
import { KtpError } from '../../schemas/errors.js'
import { hashBytes } from '../../schemas/fingerprint.js'
import type { Segment } from '../hmm/index.js'
import { alignOptions, alignStage, labelsSchema } from './stage.js'
import { hmmFingerprint, readHmm } from '../hmm/model.js'
import { scoresReader } from '../hmm/soft-scores.js'
import { formatCtm, parseCtm, parseKaldiText, readText } from '../formats/transcripts.js'

const alignCli = runOptions.extend({
  hmm: z.string().describe('HMM model file (ktp hmm-init / ktp hmm-update)'),
  text: z.string().describe('transcripts, Kaldi data-dir "text" (utt word word ...)'),
  feats: z
    .string()
    .optional()
    .describe('with --flat-start: any ktp Arrow file of the utterances (only frame counts are used)'),
  ctm: z
    .string()
    .optional()
    .describe('with --flat-start: known word spans, CTM "utt channel start duration word" in seconds'),
  ctmOut: z.string().optional().describe('also write the aligned word segments as a CTM file (seconds)'),
})

export const alignCommand = defineCommand({
  command: 'align [scores]',
  describe: 'frame labels (pdf ids) from transcripts: flat start, or Viterbi realignment of network log-posteriors',
  options: alignOptions,
  cliOptions: alignCli,
  positionals: (y) =>
    y.positional('scores', {
      describe: 'soft-dense@1 log-posteriors (ktp infer --dense), file or - for stdin; not with --flat-start',
      type: 'string',
    }),
  examples: [
    [
      'ktp align --hmm exp/hmm0.json --text data/train/text --flat-start --feats exp/feats.arrow --ctm data/train/ctm -o exp/ali0.arrow',
      'flat start inside known word spans',
    ],
    [
      'ktp infer --model exp/dnn --dense exp/feats.arrow | ktp align --hmm exp/hmm1.json --text data/train/text - -o exp/ali1.arrow',
      'Viterbi realignment with a trained network',
    ],
  ],
  run: async (opts, argv) => {
    const a = parseOptions(alignCli, argv)
    const log = (l: string) => process.stderr.write(`${l}\n`)
    const model = readHmm(a.hmm)
    const textRaw = readText(a.text, '--text')
    const transcripts = parseKaldiText(textRaw, a.text)
    const scoresArg = argv.scores === undefined ? undefined : String(argv.scores)
    let ctmRaw: string | undefined
    if (opts.flatStart) {
      if (!a.feats)
        throw new KtpError('usage', '--flat-start needs --feats FILE (the utterances whose frames to label)')
      if (scoresArg !== undefined)
        throw new KtpError(
          'usage',
          `--flat-start reads frame counts from --feats; drop the scores input '${scoresArg}'`,
        )
      if (a.ctm) ctmRaw = readText(a.ctm, '--ctm')
    } else {
      if (a.feats || a.ctm)
        throw new KtpError(
          'usage',
          '--feats and --ctm go with --flat-start; Viterbi realignment reads soft-dense scores',
        )
      if (scoresArg === undefined)
        throw new KtpError(
          'usage',
          'give the soft-dense scores (a file, or - for stdin), or use --flat-start --feats FILE',
        )
    }
    const input = await arrowInput(opts.flatStart ? a.feats! : scoresArg!, opts.flatStart ? [] : ['soft-dense'])
    const scores = opts.flatStart ? undefined : scoresReader(input.schema, input.name, model, opts)
    if (scores?.flatPriors && opts.usePriors)
      log(
        `ktp align: note: ${a.hmm} has no priors; aligning with unnormalised posteriors (add them with ktp hmm-update)`,
      )

    const segments = new Map<string, readonly Segment[]>()
    const r = await runStage({
      stage: 'align',
      options: {
        ...opts,
        hmm: hmmFingerprint(model),
        text: hashBytes(textRaw),
        ctm: ctmRaw === undefined ? null : hashBytes(ctmRaw),
      },
      input,
      schema: labelsSchema(model),
      transform: alignStage({
        model,
        options: opts,
        transcripts,
        ctm: ctmRaw === undefined ? undefined : parseCtm(ctmRaw, a.ctm!),
        scores,
        onSegments: a.ctmOut ? (utt, w) => segments.set(utt, w) : undefined,
      }),
      output: a.output,
      shard: a.shard ? parseShard(a.shard) : null,
      force: a.force,
      quiet: a.quiet,
      log,
    })
    if (a.ctmOut) {
      if (r.upToDate && existsSync(a.ctmOut)) return r.exitCode
      if (r.upToDate || r.resumed > 0) {
        log(
          `ktp align: WARNING ${a.ctmOut} lacks the ${r.upToDate ? 'utterances of the up-to-date output' : `${r.resumed} utterances resumed from an earlier run`}; rerun with --force for a complete CTM`,
        )
      }
      writeFileAtomic(a.ctmOut, [...segments].map(([utt, w]) => formatCtm(utt, w, opts.frameShift)).join(''))
    }
    return r.exitCode
  },
})
