import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { RecordBatch } from 'apache-arrow'
import { z } from 'zod'
import { KtpError, UttError } from '../../schemas/errors.js'
import { hashBytes } from '../../schemas/fingerprint.js'
import { columnWidth, makeSchema } from '../../schemas/kinds.js'
import { getMatrix, makeUttBatch, uttId } from '../../schemas/utterance.js'
import { writeFileAtomic } from '../../pipeline/io/atomic-file.js'
import type { OpenInput, StagePlan } from '../../pipeline/io/command.js'
import { arrowInput, drain, type StageInput, type Transform } from '../../pipeline/io/run-stage.js'
import { expectFields, parseTable } from '../formats/kaldi-tables.js'
import { applyCmvn, type CmvnAccum, normalizer, type Normalizer } from '../dsp/cmvn.js'

/**
 * Cepstral mean (and variance) normalisation, Kaldi's `compute-cmvn-stats` + `apply-cmvn`:
 * `ktp cmvn compute` accumulates, per key (global, speaker or utterance), the frame count and the
 * per-dimension sum and sum of squares in Float64 — streaming, so memory is O(keys × dim), never
 * O(frames) — and writes them as JSON. Kaldi's 2×(D+1) stats matrix is exactly
 * `[[...sum, count], [...sumsq, 0]]`. `ktp cmvn apply` maps x → (x − mean)·scale, scale = 1 with
 * mean-only normalisation and 1/√max(var, varFloor) with --norm-vars, var = sumsq/count − mean².
 * The default floor 1e-20 is Kaldi's: it only guards against division by zero on a constant
 * dimension (whose normalised values are then 0), it does not tame a merely small variance.
 */
export const CMVN_MODES = ['global', 'speaker', 'utterance'] as const
export type CmvnMode = (typeof CMVN_MODES)[number]

export const cmvnComputeOptions = z.object({
  mode: z
    .enum(CMVN_MODES)
    .default('global')
    .describe('one set of statistics for all data, per speaker, or per utterance'),
  normVars: z
    .boolean()
    .default(false)
    .describe('record that variances are to be normalised too (the default of cmvn apply)'),
  utt2spk: z.string().optional().describe('with --mode speaker: Kaldi utt2spk file (utt speaker per line)'),
  data: z.string().optional().describe('with --mode speaker: a Kaldi data dir whose utt2spk to use'),
})
export type CmvnComputeOptions = z.infer<typeof cmvnComputeOptions>

export const cmvnApplyOptions = z.object({
  stats: z
    .string()
    .optional()
    .describe('statistics JSON written by ktp cmvn compute (not needed with --mode utterance)'),
  mode: z
    .enum(CMVN_MODES)
    .optional()
    .describe("default: the mode of --stats; utterance without --stats computes each utterance's own stats on the fly"),
  normVars: z
    .boolean()
    .optional()
    .describe('normalise variances too (default: as recorded by cmvn compute --norm-vars)'),
  varFloor: z
    .number()
    .positive()
    .default(1e-20)
    .describe("variance floor before 1/sqrt(var) (Kaldi's value; guards constant dimensions)"),
  utt2spk: z.string().optional().describe('with speaker stats: utt2spk file overriding the mapping stored in --stats'),
  data: z
    .string()
    .optional()
    .describe('with speaker stats: a Kaldi data dir whose utt2spk overrides the stored mapping'),
})
export type CmvnApplyOptions = z.infer<typeof cmvnApplyOptions>

export type { CmvnAccum } from '../dsp/cmvn.js'

export function newAccum(dim: number): CmvnAccum {
  return { count: 0, sum: new Float64Array(dim), sumsq: new Float64Array(dim) }
}

/** Add `frames` frames (frame-major, `dim` wide) to the accumulator. */
export function accumulate(acc: CmvnAccum, data: ArrayLike<number>, frames: number, dim: number): void {
  const { sum, sumsq } = acc
  for (let t = 0; t < frames; t++) {
    const o = t * dim
    for (let j = 0; j < dim; j++) {
      const v = data[o + j]
      sum[j] += v
      sumsq[j] += v * v
    }
  }
  acc.count += frames
}

export { applyCmvn, normalizer, type Normalizer } from '../dsp/cmvn.js'

/** The stats file: readable JSON, one entry per key, Kaldi's meaning (see the file comment). */
export interface CmvnStats {
  format: 'ktp-cmvn'
  version: 1
  mode: CmvnMode
  dim: number
  norm_vars: boolean
  features_fingerprint: string
  stats: Record<string, { count: number; sum: number[]; sumsq: number[] }>
  /** speaker mode: the utterance → speaker map used, so apply needs nothing else. */
  utt2spk?: Record<string, string>
}

export function statsToJson(s: CmvnStats): string {
  return `${JSON.stringify(s, null, 1)}\n`
}

export function parseStats(text: string, source: string): CmvnStats {
  let j: CmvnStats
  try {
    j = JSON.parse(text)
  } catch (err) {
    throw new KtpError('bad-stats', `${source}: not JSON (${(err as Error).message})`)
  }
  if (j?.format !== 'ktp-cmvn' || j.version !== 1)
    throw new KtpError(
      'bad-stats',
      `${source}: not a ktp-cmvn version 1 stats file (format ${JSON.stringify(j?.format)}, version ${JSON.stringify(j?.version)})`,
    )
  if (!CMVN_MODES.includes(j.mode) || !(j.dim > 0) || typeof j.stats !== 'object')
    throw new KtpError('bad-stats', `${source}: mode, dim or stats missing or invalid`)
  for (const [k, v] of Object.entries(j.stats)) {
    if (v.sum?.length !== j.dim || v.sumsq?.length !== j.dim || !(v.count >= 0)) {
      throw new KtpError(
        'bad-stats',
        `${source}: entry '${k}' should have count ≥ 0 and ${j.dim} sums and sums of squares`,
      )
    }
  }
  return j
}

export function accumFromStats(e: CmvnStats['stats'][string]): CmvnAccum {
  return { count: e.count, sum: Float64Array.from(e.sum), sumsq: Float64Array.from(e.sumsq) }
}

/** utt → speaker from `--utt2spk FILE` or `--data DIR`. */
export function loadUtt2spk(opts: {
  utt2spk?: string
  data?: string
}): { map: Map<string, string>; text: string } | null {
  const file = opts.utt2spk ?? (opts.data ? join(opts.data, 'utt2spk') : undefined)
  if (!file) return null
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    throw new KtpError('no-file', `${opts.utt2spk ? '--utt2spk' : '--data'}: cannot read ${file}`)
  }
  return {
    text,
    map: new Map(
      parseTable(text, file).map((l) => [l.key, expectFields(l, 1, file, 'utt speaker')[0]] as [string, string]),
    ),
  }
}

/**
 * One NaN or ±Inf frame would make a whole key's statistics NaN (and then every utterance
 * normalised with them): such an utterance is refused, naming where the first bad value is.
 */
function checkFinite(utt: string, data: Float32Array, width: number): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      throw new UttError(
        'non-finite',
        utt,
        `feature value at frame ${Math.floor(i / width)}, dim ${i % width} is ${data[i]}; the utterance is skipped`,
      )
    }
  }
}

/**
 * Accumulate stats over a features input. Utterances without a speaker (speaker mode) are
 * reported through `onUttError` and skipped, like a failed utterance anywhere else.
 */
export async function computeCmvn(
  input: StageInput,
  dim: number,
  opts: CmvnComputeOptions,
  onUttError: (e: UttError) => void,
): Promise<{ stats: CmvnStats; done: number; failed: number }> {
  const utt2spk = opts.mode === 'speaker' ? (loadUtt2spk(opts)?.map ?? null) : null
  if (opts.mode === 'speaker' && !utt2spk)
    throw new KtpError('usage', '--mode speaker needs --utt2spk FILE or --data DIR')
  const accs = new Map<string, CmvnAccum>()
  const used: Record<string, string> = {}
  let done = 0
  let failed = 0
  const s = input.stream().map((b: RecordBatch) => {
    const utt = uttId(b)
    let key = 'global'
    if (opts.mode === 'utterance') key = utt
    else if (utt2spk) {
      const spk = utt2spk.get(utt)
      if (spk === undefined)
        throw new UttError('no-speaker', utt, `no speaker in ${opts.utt2spk ?? join(opts.data!, 'utt2spk')}`)
      key = spk
    }
    const m = getMatrix(b, 'feats')
    checkFinite(utt, m.data, m.width)
    if (utt2spk) used[utt] = key
    return { key, b }
  })
  await drain(
    s,
    ({ key, b }) => {
      const m = getMatrix(b, 'feats')
      if (!accs.has(key)) accs.set(key, newAccum(dim))
      accumulate(accs.get(key)!, m.data, m.frames, m.width)
      done++
    },
    (err) => {
      if (!(err instanceof UttError)) return false
      failed++
      onUttError(err)
      return true
    },
  )
  const stats: CmvnStats = {
    format: 'ktp-cmvn',
    version: 1,
    mode: opts.mode,
    dim,
    norm_vars: opts.normVars,
    features_fingerprint: input.fingerprint,
    stats: Object.fromEntries(
      [...accs].map(([k, a]) => [k, { count: a.count, sum: Array.from(a.sum), sumsq: Array.from(a.sumsq) }]),
    ),
  }
  if (utt2spk) stats.utt2spk = used
  return { stats, done, failed }
}

export interface CmvnApplyPlan {
  mode: CmvnMode
  normVars: boolean
  varFloor: number
  stats: CmvnStats | null
  utt2spk: Map<string, string> | null
  /** The value-changing options for the fingerprint: the stats enter by content hash. */
  fingerprintOptions: Record<string, unknown>
}

/** Resolve apply options against the stats file (mode and norm-vars defaults, consistency). */
export function planApply(opts: CmvnApplyOptions, statsText: string | null): CmvnApplyPlan {
  const stats = statsText === null ? null : parseStats(statsText, opts.stats ?? 'stats')
  const mode = opts.mode ?? stats?.mode
  if (!mode)
    throw new KtpError(
      'usage',
      'give --stats STATS.json (from ktp cmvn compute), or --mode utterance to normalise each utterance by its own stats',
    )
  if (stats && mode !== stats.mode)
    throw new KtpError('usage', `--mode ${mode} but ${opts.stats} holds ${stats.mode} statistics`)
  if (!stats && mode !== 'utterance') throw new KtpError('usage', `--mode ${mode} needs --stats STATS.json`)
  const override = loadUtt2spk(opts)
  const normVars = opts.normVars ?? stats?.norm_vars ?? false
  return {
    mode,
    normVars,
    varFloor: opts.varFloor,
    stats,
    utt2spk: override?.map ?? null,
    fingerprintOptions: {
      mode,
      normVars,
      varFloor: opts.varFloor,
      stats: statsText === null ? null : hashBytes(statsText),
      utt2spk: override ? hashBytes(override.text) : null,
    },
  }
}

/** The apply transform: one normaliser per key, cached (a speaker's is computed once). */
export function cmvnApplyStage(plan: CmvnApplyPlan, dim: number): Transform {
  const schema = makeSchema('features', { widths: { feats: dim } })
  const cache = new Map<string, Normalizer>()
  const fromStats = (key: string, utt: string, what: string): Normalizer => {
    let n = cache.get(key)
    if (!n) {
      const e = plan.stats!.stats[key]
      if (!e) throw new UttError('no-stats', utt, `no CMVN statistics for ${what} in the stats file`)
      n = normalizer(accumFromStats(e), plan.normVars, plan.varFloor)
      cache.set(key, n)
    }
    return n
  }
  return (s) =>
    s.map((b: RecordBatch) => {
      const utt = uttId(b)
      const m = getMatrix(b, 'feats')
      checkFinite(utt, m.data, m.width)
      let n: Normalizer
      if (plan.mode === 'global') n = fromStats('global', utt, 'global')
      else if (plan.mode === 'speaker') {
        const spk = plan.utt2spk?.get(utt) ?? plan.stats!.utt2spk?.[utt]
        if (spk === undefined)
          throw new UttError(
            'no-speaker',
            utt,
            "no speaker for this utterance (not in the stats file's utt2spk nor in --utt2spk/--data)",
          )
        n = fromStats(spk, utt, `speaker '${spk}'`)
      } else if (plan.stats) {
        n = fromStats(utt, utt, 'this utterance')
        cache.delete(utt)
      } else {
        const acc = newAccum(dim)
        accumulate(acc, m.data, m.frames, dim)
        n = normalizer(acc, plan.normVars, plan.varFloor)
      }
      return makeUttBatch(schema, { utt, feats: applyCmvn(m.data, m.frames, dim, n) })
    })
}

/**
 * `ktp cmvn compute`: the statistics of a features file (or - for stdin) written to `output`
 * (atomically), or to stdout with `-`. Exit code 1 if some utterances failed.
 */
export async function cmvnCompute(args: {
  options: CmvnComputeOptions
  input: string
  output?: string
}): Promise<number> {
  const out = args.output
  if (!out) throw new KtpError('usage', 'give the statistics file to write with -o STATS.json (or -o - for stdout)')
  const input = await arrowInput(args.input, ['features'])
  const dim = columnWidth(input.schema, 'feats')
  const r = await computeCmvn(input, dim, args.options, (e) =>
    process.stderr.write(`ktp cmvn compute: WARNING ${e.message}\n`),
  )
  const json = statsToJson(r.stats)
  if (out === '-') process.stdout.write(json)
  else writeFileAtomic(out, json)
  process.stderr.write(
    `ktp cmvn compute: done ${r.done}, failed ${r.failed} (${Object.keys(r.stats.stats).length} ${r.stats.mode} entries)\n`,
  )
  return r.failed > 0 ? 1 : 0
}

/** `ktp cmvn apply` over an input: the stats file is read (and checked) before the input is opened. */
export async function planCmvnApply(opts: CmvnApplyOptions, open: OpenInput): Promise<StagePlan> {
  let statsText: string | null = null
  if (opts.stats) {
    try {
      statsText = readFileSync(opts.stats, 'utf8')
    } catch {
      throw new KtpError('no-file', `--stats: cannot read ${opts.stats}`)
    }
  }
  const plan = planApply(opts, statsText)
  const input = await open()
  const dim = columnWidth(input.schema, 'feats')
  if (plan.stats && plan.stats.dim !== dim) {
    throw new KtpError(
      'dim-mismatch',
      `${opts.stats} holds ${plan.stats.dim}-dimensional statistics but ${input.name} has ${dim}-dimensional features`,
    )
  }
  return {
    stage: 'cmvn-apply',
    options: plan.fingerprintOptions,
    input,
    schema: makeSchema('features', { widths: { feats: dim } }),
    transform: cmvnApplyStage(plan, dim),
  }
}
