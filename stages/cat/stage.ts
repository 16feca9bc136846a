import { once } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import type { RecordBatch } from 'apache-arrow'
import _ from 'highland'
import { z } from 'zod'
import { KtpError } from '../../schemas/errors.js'
import { fingerprint } from '../../schemas/fingerprint.js'
import { sameColumns } from '../../schemas/kinds.js'
import { getMatrix, getVector, uttId } from '../../schemas/utterance.js'
import type { OpenInput, StagePlan } from '../../pipeline/io/command.js'
import { openAtomicStream } from '../../pipeline/io/atomic-file.js'
import { drain, type StageInput } from '../../pipeline/io/run-stage.js'
import { type Shard, inShard } from '../../pipeline/io/shard.js'
import { matrixToKaldiText, vectorToKaldiText } from '../formats/kaldi-text.js'

/**
 * `ktp cat`: concatenate, select (`--utts`) or shard any ktp Arrow inputs of one kind, keeping
 * schema and provenance; or print them as a Kaldi text archive. Like Kaldi's `copy-feats` with
 * `--include`/`subset` rolled in.
 */
export const catOptions = z.object({
  utts: z
    .string()
    .optional()
    .describe('keep only these utterances: a file with one id per line (first field), or a comma-separated list'),
  format: z
    .enum(['arrow', 'kaldi-text'])
    .default('arrow')
    .describe('output format: Arrow, or a Kaldi text archive (ark,t) of one column'),
  column: z
    .string()
    .optional()
    .describe('with --format kaldi-text: the column to print (default: the first per-frame column)'),
})
export type CatOptions = z.infer<typeof catOptions>

/** The utterance filter of `--utts` (a file of ids, Kaldi-style, or a comma list). */
export function uttSelector(spec: string | undefined): ((utt: string) => boolean) | undefined {
  if (spec === undefined) return undefined
  let ids: string[]
  if (existsSync(spec)) {
    ids = readFileSync(spec, 'utf8')
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[0])
      .filter(Boolean)
  } else if (spec.includes(',') || !spec.includes('/')) {
    ids = spec
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
  } else {
    throw new KtpError('no-file', `--utts: no such file '${spec}'`)
  }
  const set = new Set(ids)
  return (utt) => set.has(utt)
}

/** Several inputs of one kind as one: their utterances in order, one fingerprint for them all. */
export function concatInputs(inputs: StageInput[]): { input: StageInput; sameValues: boolean } {
  if (inputs.length === 0) throw new KtpError('usage', 'no inputs given')
  const first = inputs[0]
  for (const i of inputs.slice(1)) {
    if (!sameColumns(i.schema, first.schema)) {
      throw new KtpError(
        'wrong-columns',
        `${i.name}: columns differ from ${first.name}; only inputs of one kind and shape can be joined`,
      )
    }
  }
  const fps = inputs.map((i) => i.fingerprint)
  const sameValues = fps.every((f) => f === fps[0])
  return {
    sameValues,
    input: {
      name: inputs.map((i) => i.name).join(' + '),
      schema: first.schema,
      fingerprint: sameValues ? fps[0] : fingerprint('cat', {}, fps),
      stream: () => _(inputs.map((i) => i.stream())).sequence(),
      total: inputs.every((i) => i.total !== undefined) ? inputs.reduce((a, i) => a + (i.total ?? 0), 0) : undefined,
    },
  }
}

/** One utterance as Kaldi text: a matrix column as `utt [ rows ]`, a vector column as `utt v v v`. */
export function batchToKaldiText(batch: RecordBatch, column?: string): string {
  const fields = batch.schema.fields
  const name = column ?? fields.find((f) => f.name !== 'utt' && String(f.type).startsWith('List'))?.name
  if (!name || !fields.some((f) => f.name === name)) {
    throw new KtpError(
      'usage',
      `--column: no per-frame column '${column ?? ''}' in this stream (has ${fields.map((f) => f.name).join(', ')})`,
    )
  }
  const utt = uttId(batch)
  const t = String(fields.find((f) => f.name === name)!.type)
  if (t.includes('FixedSizeList')) {
    if (t.includes('Float16'))
      throw new KtpError('usage', `--column ${name} is float16; Kaldi text needs float32 (convert first)`)
    const m = getMatrix(batch, name)
    return matrixToKaldiText(utt, m.data, m.frames, m.width)
  }
  return vectorToKaldiText(utt, getVector(batch, name))
}

/** The utterances of `input` in the shard and selection, as a Kaldi text archive to `output` (- = stdout). */
async function writeKaldiText(
  input: StageInput,
  o: { shard: Shard | null; select?: (utt: string) => boolean; column?: string; output: string },
): Promise<void> {
  // a file appears whole or not at all (a stop or a failure midway leaves the previous one)
  const file = o.output === '-' ? null : openAtomicStream(o.output)
  const out = file ? file.stream : process.stdout
  const s = input.stream().filter((b) => {
    const u = uttId(b)
    return inShard(u, o.shard) && (!o.select || o.select(u))
  })
  try {
    await drain(
      s,
      async (b) => {
        if (!out.write(batchToKaldiText(b, o.column))) await once(out, 'drain')
      },
      () => false,
    )
  } catch (err) {
    file?.abort()
    throw err
  }
  await file?.commit()
}

/**
 * A run of `ktp cat` over its inputs (stdin at most once). Arrow output is a plan for the runner
 * (same values, so the provenance is kept when all inputs share it); a Kaldi text archive is
 * written here, and the run's exit code returned.
 */
export async function planCat(
  a: { options: CatOptions; inputs: string[]; output: string; shard: Shard | null },
  open: OpenInput,
): Promise<StagePlan | number> {
  if (a.inputs.filter((n) => n === '-').length > 1) throw new KtpError('usage', 'stdin (-) can be given only once')
  const { input, sameValues } = concatInputs(await Promise.all(a.inputs.map((n) => open(n))))
  const select = uttSelector(a.options.utts)
  if (a.options.format === 'kaldi-text') {
    await writeKaldiText(input, { shard: a.shard, select, column: a.options.column, output: a.output })
    return 0
  }
  return {
    stage: 'cat',
    options: {},
    selection: { utts: a.options.utts ?? null },
    select,
    preserveMeta: sameValues,
    input,
    schema: input.schema,
    transform: (s) => s,
  }
}
