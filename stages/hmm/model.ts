import { readFileSync } from 'node:fs'
import type { Schema } from 'apache-arrow'
import { z } from 'zod'
import { KtpError } from '../../schemas/errors.js'
import { canonicalJson, hashBytes } from '../../schemas/fingerprint.js'
import { writeFileAtomic } from '../../pipeline/io/atomic-file.js'
export * from './model-json.js'
import { hmmFromJson, hmmToJson, pdfNames, type HmmModel } from './model-json.js'
import { makeUnitSet, lexiconUnits, wholeWordLexicon, digitPhoneLexicon, DIGIT_WORDS, type Lexicon } from './index.js'
import { TIMIT_PHONES_39, TIMIT_PHONES_48 } from '../scoring/index.js'

/**
 * A stream whose metadata names its classes (`ktp.inventory`, a JSON array of names by id) must
 * name this model's pdfs, in order: class ids that mean different things fail silently otherwise.
 */
export function checkInventory(schema: Schema, source: string, m: HmmModel): void {
  const inv = schema.metadata.get('ktp.inventory')
  let names: unknown
  try {
    names = inv === undefined ? undefined : JSON.parse(inv)
  } catch {
    return // not the JSON-array convention: nothing to compare
  }
  if (!Array.isArray(names)) return
  const mine = pdfNames(m.units)
  const i = mine.findIndex((n, k) => names[k] !== n)
  if (i >= 0 || names.length !== mine.length) {
    const at = i >= 0 ? i : Math.min(names.length, mine.length)
    throw new KtpError(
      'wrong-classes',
      `${source}: class ${at} is ${JSON.stringify(names[at] ?? null)} in its ktp.inventory but ${JSON.stringify(mine[at] ?? null)} in the HMM (${names.length} vs ${mine.length} classes); labels, network and HMM must come from the same ktp hmm-init`,
    )
  }
}

/** Content hash of a model (for fingerprints of stages that use it): ignores `producer`. */
export function hmmFingerprint(m: HmmModel): string {
  const { producer: _p, ...rest } = hmmToJson(m) as Record<string, unknown>
  return hashBytes(canonicalJson(rest))
}

export function readHmm(path: string): HmmModel {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new KtpError(
      'no-file',
      `--hmm ${path}: ${code === 'ENOENT' ? 'no such file (make one with ktp hmm-init)' : (err as Error).message}`,
    )
  }
  let obj: unknown
  try {
    obj = JSON.parse(text)
  } catch (err) {
    throw new KtpError('bad-hmm', `${path}: not valid JSON (${(err as Error).message})`)
  }
  return hmmFromJson(obj, path)
}

export function writeHmm(path: string, m: HmmModel, producer?: Record<string, unknown>): void {
  writeFileAtomic(path, `${JSON.stringify(hmmToJson(m, producer), null, 1)}\n`)
}

/** A Kaldi-style lexicon file: `word unit unit ...` per line; `#` comments; one pronunciation per word. */
export function parseLexicon(text: string, source: string): Lexicon {
  const lex = new Map<string, string[]>()
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const [w, ...units] = line.split(/\s+/)
    if (units.length === 0)
      throw new KtpError('bad-lexicon', `${source}:${i + 1}: word "${w}" has no units; expected "word unit unit ..."`)
    if (lex.has(w!))
      throw new KtpError(
        'bad-lexicon',
        `${source}:${i + 1}: word "${w}" appears twice (one pronunciation per word is supported)`,
      )
    lex.set(w!, units)
  })
  if (lex.size === 0) throw new KtpError('bad-lexicon', `${source}: no words`)
  return lex
}

/** Units of a phone inventory: a built-in name or a file whose first field per line is a unit. */
export function readPhoneInventory(spec: string): string[] {
  if (spec === 'timit48') return [...TIMIT_PHONES_48]
  if (spec === 'timit39') return [...TIMIT_PHONES_39]
  let text: string
  try {
    text = readFileSync(spec, 'utf8')
  } catch {
    throw new KtpError('no-file', `--phones-from: no such file '${spec}' (or give timit48 / timit39)`)
  }
  const phones = text
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0]!)
    .filter((p) => p !== '' && !p.startsWith('#'))
  if (phones.length === 0) throw new KtpError('bad-lexicon', `--phones-from ${spec}: no phones`)
  return [...new Set(phones)]
}

export const hmmInitOptions = z.object({
  lexicon: z.string().optional().describe('lexicon file: "word unit unit ..." per line (e.g. a phone lexicon)'),
  wholeWordDigits: z
    .boolean()
    .default(false)
    .describe('one whole-word unit per digit word zero..nine (the FSDD recipe)'),
  cmuDigits: z.boolean().default(false).describe('digit words zero..nine and oh over shared CMUdict phones'),
  words: z.string().optional().describe('comma-separated words, each a whole-word unit (e.g. yes,no)'),
  phonesFrom: z
    .string()
    .optional()
    .describe(
      'phone loop: every phone is a "word" of one unit; a file with one phone per line (first field), or timit48 / timit39',
    ),
  states: z.number().int().min(1).default(3).describe('emitting states per unit (left-to-right, self-loop + forward)'),
  silenceStates: z.number().int().min(1).optional().describe('states of the silence unit (default: --states)'),
  silence: z
    .string()
    .optional()
    .describe(
      'name of the silence unit, added if the lexicon does not use it (for optional silence in align/decode and flat-start gaps)',
    ),
  selfLoop: z.number().gt(0).lt(1).default(0.5).describe('initial self-loop probability of every state'),
})
export type HmmInitOptions = z.infer<typeof hmmInitOptions>

/** The lexicon chosen by exactly one of the hmm-init lexicon options. */
export function chooseLexicon(o: HmmInitOptions): Lexicon {
  const given = [
    o.lexicon !== undefined,
    o.wholeWordDigits,
    o.cmuDigits,
    o.words !== undefined,
    o.phonesFrom !== undefined,
  ]
  if (given.filter(Boolean).length !== 1) {
    throw new KtpError(
      'usage',
      'give exactly one of --lexicon FILE, --whole-word-digits, --cmu-digits, --words LIST, --phones-from INVENTORY',
    )
  }
  const tenDigits = DIGIT_WORDS.filter((w) => w !== 'oh')
  if (o.wholeWordDigits) return wholeWordLexicon(tenDigits)
  if (o.cmuDigits) return digitPhoneLexicon(DIGIT_WORDS)
  if (o.words !== undefined) {
    const ws = o.words
      .split(',')
      .map((w) => w.trim())
      .filter(Boolean)
    if (ws.length === 0 || new Set(ws).size !== ws.length)
      throw new KtpError('usage', `--words: expected distinct comma-separated words, got '${o.words}'`)
    return wholeWordLexicon(ws)
  }
  if (o.phonesFrom !== undefined) return wholeWordLexicon(readPhoneInventory(o.phonesFrom))
  let text: string
  try {
    text = readFileSync(o.lexicon!, 'utf8')
  } catch {
    throw new KtpError('no-file', `--lexicon: no such file '${o.lexicon}'`)
  }
  return parseLexicon(text, o.lexicon!)
}

/**
 * A fresh model: units in lexicon first-use order, the silence unit first when it is not used by
 * the lexicon (Kaldi's convention: silence pdfs come first), flat transitions, no priors.
 */
export function initHmm(o: HmmInitOptions): HmmModel {
  const lexicon = chooseLexicon(o)
  let names = lexiconUnits(lexicon)
  const silence = o.silence ?? null
  if (silence !== null && !names.includes(silence)) names = [silence, ...names]
  const states = (u: string) => (u === silence ? (o.silenceStates ?? o.states) : o.states)
  const units = makeUnitSet(names, states)
  return {
    units,
    lexicon,
    silence,
    transitions: { selfLoop: new Float64Array(units.numPdfs).fill(o.selfLoop) },
    priors: null,
  }
}
