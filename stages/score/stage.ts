import { basename } from 'node:path'
import { existsSync, readFileSync } from 'node:fs'
import { z } from 'zod'
import { KtpError } from '../../schemas/errors.js'
import {
  formatSumTable,
  labelMapFrom,
  parseLabelMap,
  parseTrn,
  scoreToJson,
  scoreTrn,
  LabelMapError,
  ScoringError,
  TIMIT_TO_39,
  TrnError,
  type LabelMap,
  type ScoreResult,
  type TrnEntry,
} from '../scoring/index.js'

/**
 * `ktp score`: sclite-compatible scoring of trn hypotheses against trn references (what
 * `sclite -r REF trn -h HYP trn -i rm -o sum` prints), with an optional label fold (TIMIT's 39
 * classes) applied to both sides first.
 */
export const scoreOptions = z.object({
  map: z
    .string()
    .optional()
    .describe(
      'fold labels before scoring: timit39 (TIMIT 61/48 → 39 phones), or a file of "from [to]" lines (no "to" deletes the label)',
    ),
  json: z.boolean().default(false).describe('print the numbers as JSON instead of the sclite summary table'),
  utterances: z.boolean().default(false).describe('with --json: add per-utterance counts and edit operations'),
  caseSensitive: z
    .boolean()
    .default(false)
    .describe('compare words and ids case-sensitively (sclite -s); by default both are lower-cased, as sclite does'),
  missing: z
    .enum(['delete', 'ignore', 'error'])
    .default('delete')
    .describe(
      'a reference utterance with no hypothesis line: delete = count all its words as deletions (as sclite scores an empty hypothesis; Kaldi compute-wer --mode=all), ignore = leave it out (what sclite does with a trn that lacks the line), error = refuse (Kaldi --mode=strict)',
    ),
})
export type ScoreOptions = z.infer<typeof scoreOptions>

function readFile(path: string, option: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new KtpError('no-file', `${option} ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`)
  }
}

export function loadMap(spec: string | undefined): LabelMap | undefined {
  if (spec === undefined) return undefined
  if (spec === 'timit39') return labelMapFrom(TIMIT_TO_39)
  if (!existsSync(spec)) throw new KtpError('no-file', `--map: no such file '${spec}' (or give timit39)`)
  return parseLabelMap(readFile(spec, '--map'), spec)
}

/** The scoring core's errors already name file:line; they become fatal ktp errors (exit 2). */
function asKtp(err: unknown, source: string): unknown {
  if (err instanceof TrnError || err instanceof LabelMapError) return new KtpError('bad-input', err.message)
  if (err instanceof ScoringError) return new KtpError('bad-input', `${source}: ${err.message}`)
  return err
}

/**
 * References without a hypothesis line. A decoder that dropped an utterance must not make the
 * error rate look better: by default they count as empty hypotheses (all deletions), with a
 * warning that names them.
 */
function addMissing(
  refs: readonly TrnEntry[],
  hyps: readonly TrnEntry[],
  o: ScoreOptions,
  hypPath: string,
  warn: (line: string) => void,
): TrnEntry[] {
  const have = new Set(hyps.map((h) => h.id))
  const missing = [...new Map(refs.filter((r) => !have.has(r.id)).map((r) => [r.id, r])).values()]
  if (missing.length === 0 || o.missing === 'ignore') return [...hyps]
  const ids = missing.map((r) => r.id)
  const named = `${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ` and ${ids.length - 5} more` : ''}`
  if (o.missing === 'error')
    throw new KtpError(
      'missing-hyp',
      `--hyp ${hypPath}: no hypothesis for ${ids.length} reference utterance(s): ${named} (--missing delete counts them as deletions)`,
    )
  warn(
    `ktp score: WARNING ${hypPath}: no hypothesis for ${ids.length} reference utterance(s) (${named}): scored as empty hypotheses, all deletions (--missing ignore leaves them out, as sclite does with a trn that lacks the line)`,
  )
  return [...hyps, ...missing.map((r) => ({ ...r, words: [] }))]
}

export function scoreFiles(
  refPath: string,
  hypPath: string,
  o: ScoreOptions,
  warn: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): ScoreResult {
  try {
    const map = loadMap(o.map)
    const refs = parseTrn(readFile(refPath, '--ref'), { caseSensitive: o.caseSensitive }, refPath)
    const hyps = parseTrn(readFile(hypPath, '--hyp'), { caseSensitive: o.caseSensitive }, hypPath)
    if (hyps.length === 0) throw new KtpError('empty', `--hyp ${hypPath}: no hypotheses to score`)
    try {
      scoreTrn(refs, [], { map })
    } catch (err) {
      throw asKtp(err, refPath) // duplicate, differing references are the reference file's fault
    }
    return scoreTrn(refs, addMissing(refs, hyps, o, hypPath, warn), { map })
  } catch (err) {
    throw asKtp(err, hypPath)
  }
}

/** The report text: the sclite sum table titled by the hypothesis file name, or JSON. */
export function formatScore(r: ScoreResult, hypPath: string, o: ScoreOptions): string {
  return o.json ? `${JSON.stringify(scoreToJson(r, o.utterances))}\n` : formatSumTable(r, basename(hypPath))
}

/** `ktp score`: the sclite summary (or JSON) of `hyp` against `ref`, on stdout. */
export function printScore(o: ScoreOptions, f: { ref: string; hyp: string }): number {
  process.stdout.write(formatScore(scoreFiles(f.ref, f.hyp, o), f.hyp, o))
  return 0
}
