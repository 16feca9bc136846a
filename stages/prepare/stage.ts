import { createHash } from 'node:crypto'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { z } from 'zod'
import { KtpError } from '../../schemas/errors.js'
import { formatCtm, parseCtm, type CtmSegment } from '../formats/ctm.js'
import type { Corpus } from '../formats/corpus.js'
import { readDataDir, subsetDataDir, writeDataDir } from '../formats/datadir-io.js'
import { readFsdd } from '../formats/fsdd.js'
import { readTimit } from '../formats/timit.js'
import { readTsv } from '../formats/tsv.js'

/**
 * `ktp prepare FORMAT SRC -o DATADIR`: turn a corpus into Kaldi data dir(s), the input of
 * `ktp features`. Only headers are read (for rates and durations), tables are written atomically
 * and only when their content changes, so a rerun is cheap and leaves mtimes alone.
 *
 * Train/test: split by speaker (never the same speaker on both sides) — by the corpus' own
 * division (TIMIT TRAIN/TEST folders), else by `--test-speakers`, else by `--test-fraction`; plus
 * `--test-utts`. With a split (always for TIMIT) the output is DATADIR/train and DATADIR/test;
 * without one, DATADIR itself.
 */
export const PREPARE_FORMATS = ['kaldi', 'timit', 'fsdd', 'tsv'] as const
export type PrepareFormat = (typeof PREPARE_FORMATS)[number]

export const prepareOptions = z.object({
  testSpeakers: z
    .string()
    .optional()
    .describe('test speakers: a comma-separated list or a file with one id per line; overrides the corpus division'),
  testFraction: z
    .number()
    .min(0)
    .max(1)
    .optional()
    .describe('put this fraction of speakers in test, chosen by a hash of their ids (deterministic; 0 = all in train)'),
  testUtts: z
    .string()
    .optional()
    .describe(
      'utterances to put in test as well: a comma-separated list or a file of ids; a sentence id (TIMIT si836) selects it for every speaker',
    ),
  skipSa: z
    .boolean()
    .default(false)
    .describe("TIMIT: leave out the SA dialect sentences (as Kaldi's TIMIT recipe does)"),
})
export type PrepareOptions = z.infer<typeof prepareOptions>

/** `a,b,c` or a file with one id per line (first field). */
export function parseIdList(spec: string, option: string): string[] {
  if (existsSync(spec) && statSync(spec).isFile()) {
    return readFileSync(spec, 'utf8')
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[0])
      .filter(Boolean)
  }
  if (spec.includes('/')) throw new KtpError('no-file', `${option}: no such file '${spec}'`)
  return spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
}

/**
 * round(F·n) speakers, those whose sha256(id) sorts first: deterministic, independent of input
 * order, and at least one speaker on each side whenever 0 < F < 1 and there are two speakers.
 */
export function speakersByFraction(speakers: string[], fraction: number): Set<string> {
  const n = speakers.length
  let k = Math.round(fraction * n)
  if (n > 1 && fraction > 0) k = Math.max(k, 1)
  if (n > 1 && fraction < 1) k = Math.min(k, n - 1)
  const h = (s: string) => createHash('sha256').update(s).digest('hex')
  return new Set([...speakers].sort((a, b) => (h(a) < h(b) ? -1 : h(a) > h(b) ? 1 : 0)).slice(0, k))
}

function readKaldiCorpus(src: string): Corpus {
  const { data, warnings } = readDataDir(src)
  const ctm: Record<string, Map<string, CtmSegment[]>> = {}
  for (const f of readdirSync(src)
    .filter((n) => n.endsWith('.ctm'))
    .sort())
    ctm[f] = parseCtm(readFileSync(join(src, f), 'utf8'), join(src, f))
  return { data, ctm, division: null, warnings }
}

export function readCorpus(format: string, src: string, opts: PrepareOptions): Corpus {
  if (!PREPARE_FORMATS.includes(format as PrepareFormat)) {
    throw new KtpError('usage', `unknown corpus format '${format}'; expected one of ${PREPARE_FORMATS.join(', ')}`)
  }
  if (!existsSync(src))
    throw new KtpError('no-file', `${src}: no such file or directory (the ${format} corpus to prepare)`)
  switch (format as PrepareFormat) {
    case 'kaldi':
      return readKaldiCorpus(src)
    case 'timit':
      return readTimit(src, { skipSa: opts.skipSa })
    case 'fsdd':
      return readFsdd(src)
    case 'tsv':
      return readTsv(src)
  }
}

/** The test utterances, or null when nothing asks for a split. Messages go to `notes`. */
export function testSet(c: Corpus, opts: PrepareOptions, notes: string[]): Set<string> | null {
  const utt2spk = c.data.utt2spk
  const speakers = [...new Set(utt2spk.values())].sort()
  let testSpk: Set<string> | null = null
  if (opts.testSpeakers !== undefined) {
    testSpk = new Set(parseIdList(opts.testSpeakers, '--test-speakers'))
    const unknown = [...testSpk].filter((s) => !speakers.includes(s))
    if (unknown.length) {
      throw new KtpError(
        'usage',
        `--test-speakers: no speaker ${unknown.map((s) => `'${s}'`).join(', ')} in the corpus; it has ${speakers.slice(0, 10).join(', ')}${speakers.length > 10 ? ', …' : ''}`,
      )
    }
  } else if (opts.testFraction !== undefined) {
    testSpk = speakersByFraction(speakers, opts.testFraction)
  }
  let test: Set<string> | null = null
  if (testSpk) {
    if (c.division) notes.push("the split options override the corpus' own TRAIN/TEST division")
    test = new Set([...utt2spk].filter(([, s]) => testSpk!.has(s)).map(([u]) => u))
  } else if (c.division) {
    test = new Set([...c.division].filter(([, d]) => d === 'test').map(([u]) => u))
  }
  if (opts.testUtts !== undefined) {
    // an id names an utterance, or a sentence of every speaker (TIMIT `si836` matches `fvmh0-si836`)
    const wanted = parseIdList(opts.testUtts, '--test-utts')
    const all = [...utt2spk.keys()]
    const extra = wanted.flatMap((w) => (utt2spk.has(w) ? [w] : all.filter((u) => u.endsWith(`-${w}`))))
    const unknown = wanted.filter((w) => !utt2spk.has(w) && !all.some((u) => u.endsWith(`-${w}`)))
    if (unknown.length)
      throw new KtpError(
        'usage',
        `--test-utts: no utterance ${unknown
          .slice(0, 5)
          .map((u) => `'${u}'`)
          .join(', ')} in the corpus`,
      )
    test = new Set([...(test ?? []), ...extra])
  }
  return test
}

export interface PreparedPart {
  dir: string
  utterances: number
  speakers: number
  written: string[]
}

function writePart(dir: string, c: Corpus, keep: (u: string) => boolean, warnings: string[]): PreparedPart {
  const data = subsetDataDir(c.data, keep)
  if (data.text && data.text.size === 0) data.text = null
  if (data.utt2dur && data.utt2dur.size !== data.utt2spk.size) data.utt2dur = null
  const extra: Record<string, string> = {}
  for (const [name, m] of Object.entries(c.ctm)) extra[name] = formatCtm(new Map([...m].filter(([u]) => keep(u))))
  const r = writeDataDir(dir, data, extra)
  warnings.push(...r.warnings)
  return { dir, utterances: data.utt2spk.size, speakers: new Set(data.utt2spk.values()).size, written: r.written }
}

/** Read, split and write. Returns the parts written and the warnings/notes for stderr. */
export function prepare(
  format: string,
  src: string,
  out: string,
  opts: PrepareOptions,
): { parts: PreparedPart[]; warnings: string[] } {
  const c = readCorpus(format, src, opts)
  const warnings = [...c.warnings]
  const test = testSet(c, opts, warnings)
  if (!test && format !== 'timit') return { parts: [writePart(resolve(out), c, () => true, warnings)], warnings }
  const t = test ?? new Set<string>()
  if (!test)
    warnings.push(
      'no train/test division in the corpus and no --test-speakers/--test-fraction: everything goes to train',
    )
  const parts = [
    writePart(join(resolve(out), 'train'), c, (u) => !t.has(u), warnings),
    writePart(join(resolve(out), 'test'), c, (u) => t.has(u), warnings),
  ]
  return { parts, warnings }
}

/**
 * `ktp prepare`: read, split and write, then say on stderr what each data dir holds and which
 * of its files were (re)written or removed as stale.
 */
export function prepareCorpus(opts: PrepareOptions, a: { format: string; src: string; output?: string }): number {
  if (!a.output) throw new KtpError('usage', 'give the data dir to write with -o DATADIR')
  const { parts, warnings } = prepare(a.format, a.src, a.output, opts)
  for (const w of warnings) process.stderr.write(`ktp prepare: WARNING ${w}\n`)
  for (const p of parts) {
    const wrote = p.written.filter((n) => !n.startsWith('-'))
    const removed = p.written.filter((n) => n.startsWith('-')).map((n) => n.slice(1))
    const what =
      [wrote.length ? `wrote ${wrote.join(' ')}` : '', removed.length ? `removed stale ${removed.join(' ')}` : '']
        .filter(Boolean)
        .join('; ') || 'up to date'
    process.stderr.write(`ktp prepare: ${p.dir}: ${p.utterances} utterances, ${p.speakers} speakers (${what})\n`)
  }
  return 0
}
