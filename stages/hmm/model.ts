import { readFileSync } from 'node:fs'
import type { Schema } from 'apache-arrow'
import { z } from 'zod'
import { KtpError } from '../../schemas/errors.js'
import { canonicalJson, hashBytes } from '../../schemas/fingerprint.js'
import { writeFileAtomic } from '../../pipeline/io/atomic-file.js'
import {
  makeUnitSet,
  lexiconUnits,
  wholeWordLexicon,
  digitPhoneLexicon,
  DIGIT_WORDS,
  type Lexicon,
  type TransitionModel,
  type UnitSet,
} from './index.js'
import { TIMIT_PHONES_39, TIMIT_PHONES_48 } from '../scoring/index.js'

/**
 * The HMM model file (`ktp.hmm@1`): everything that turns frame scores over pdfs into words,
 * except the acoustic model itself. One JSON object:
 *
 *   { "format": "ktp.hmm", "version": 1,
 *     "units":   [{"name": "sil", "states": 3}, {"name": "one", "states": 3}, ...],
 *     "silence": "sil" | null,                     // unit used for optional silence / gaps
 *     "lexicon": {"one": ["one"], ...},            // word → unit sequence
 *     "num_pdfs": 33,                              // = Σ states; pdf = offset(unit) + state
 *     "transitions": {"self_logp": [...], "forward_logp": [...]},   // natural log, per pdf
 *     "priors": [...] | null,                      // p(pdf), from `ktp hmm-update`
 *     "producer": {...} }                          // free-form provenance, ignored on read
 *
 * pdf ids are laid out unit by unit in `units` order and named `<unit>_<state>` (e.g. `seven_2`;
 * a one-state unit is named by itself); that naming is the label inventory trainers see. Both transition arrays are stored (not just
 * the self-loop) so the file reads as what it is, and the reader checks they agree.
 */
export const HMM_FORMAT = 'ktp.hmm'
export const HMM_VERSION = 1

export interface HmmModel {
  units: UnitSet
  lexicon: Lexicon
  /** silence unit name, or null when the task has none (e.g. a TIMIT phone loop with `sil` as a phone) */
  silence: string | null
  transitions: TransitionModel
  /** p(pdf) summing to one, or null before any alignment exists */
  priors: Float64Array | null
}

/**
 * `<unit>_<state>` for every pdf id, or just `<unit>` for a one-state unit, so that a one-state
 * phone loop's inventory is the phone list itself (the classes `ktp labels` makes from TIMIT).
 */
export function pdfNames(units: UnitSet): string[] {
  const out: string[] = []
  units.units.forEach((u, i) => {
    const n = units.numStates[i]!
    for (let k = 0; k < n; k++) out.push(n === 1 ? u : `${u}_${k}`)
  })
  return out
}

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

/** The `name id` inventory file that labels and trainers use to know num_classes. */
export function formatInventory(units: UnitSet): string {
  return pdfNames(units)
    .map((n, i) => `${n} ${i}\n`)
    .join('')
}

/** The decoding vocabulary: every lexicon word (optional silence is added by the graph, not the LM). */
export function vocabulary(m: HmmModel): string[] {
  return [...m.lexicon.keys()]
}

export function hmmToJson(m: HmmModel, producer?: Record<string, unknown>): object {
  const sl = m.transitions.selfLoop
  return {
    format: HMM_FORMAT,
    version: HMM_VERSION,
    units: m.units.units.map((name, i) => ({ name, states: m.units.numStates[i]! })),
    silence: m.silence,
    lexicon: Object.fromEntries([...m.lexicon].map(([w, p]) => [w, [...p]])),
    num_pdfs: m.units.numPdfs,
    transitions: {
      self_logp: Array.from(sl, (p) => Math.log(p)),
      forward_logp: Array.from(sl, (p) => Math.log1p(-p)),
    },
    priors: m.priors ? Array.from(m.priors) : null,
    ...(producer ? { producer } : {}),
  }
}

/** Content hash of a model (for fingerprints of stages that use it): ignores `producer`. */
export function hmmFingerprint(m: HmmModel): string {
  const { producer: _p, ...rest } = hmmToJson(m) as Record<string, unknown>
  return hashBytes(canonicalJson(rest))
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x)

function numArray(x: unknown, n: number, field: string, bad: (msg: string) => KtpError): Float64Array {
  if (!Array.isArray(x) || x.length !== n) {
    throw bad(
      `"${field}" must be an array of ${n} numbers (one per pdf), got ${Array.isArray(x) ? `${x.length} values` : JSON.stringify(x)}`,
    )
  }
  const out = new Float64Array(n)
  x.forEach((v, i) => {
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw bad(`"${field}[${i}]" must be a finite number, got ${JSON.stringify(v)}`)
    out[i] = v
  })
  return out
}

/** Validate a parsed `ktp.hmm@1` object; errors name the source and the offending field. */
export function hmmFromJson(obj: unknown, source: string): HmmModel {
  const bad = (msg: string) => new KtpError('bad-hmm', `${source}: ${msg}`)
  if (!isObj(obj)) throw bad('expected a JSON object')
  if (obj.format !== HMM_FORMAT)
    throw bad(
      `"format" is ${JSON.stringify(obj.format)}, expected "${HMM_FORMAT}" (is this a ktp HMM model? make one with ktp hmm-init)`,
    )
  if (obj.version !== HMM_VERSION)
    throw bad(`version ${JSON.stringify(obj.version)} is not supported; this ktp reads ${HMM_FORMAT}@${HMM_VERSION}`)
  if (!Array.isArray(obj.units) || obj.units.length === 0)
    throw bad('"units" must be a non-empty array of {name, states}')
  const names: string[] = []
  const states: number[] = []
  obj.units.forEach((u, i) => {
    if (!isObj(u) || typeof u.name !== 'string' || !/^\S+$/.test(u.name))
      throw bad(`"units[${i}].name" must be a string without spaces`)
    if (!Number.isInteger(u.states) || (u.states as number) < 1)
      throw bad(`"units[${i}].states" must be an integer ≥ 1, got ${JSON.stringify(u.states)}`)
    names.push(u.name)
    states.push(u.states as number)
  })
  if (new Set(names).size !== names.length)
    throw bad(`"units" lists a unit twice: ${names.find((n, i) => names.indexOf(n) !== i)}`)
  const units = makeUnitSet(names, (u) => states[names.indexOf(u)]!)
  if (obj.num_pdfs !== units.numPdfs)
    throw bad(`"num_pdfs" is ${JSON.stringify(obj.num_pdfs)} but the units have ${units.numPdfs} states in all`)
  const silence = obj.silence ?? null
  if (silence !== null && (typeof silence !== 'string' || !units.index.has(silence))) {
    throw bad(`"silence" is ${JSON.stringify(silence)}, which is not one of the units`)
  }
  if (!isObj(obj.lexicon) || Object.keys(obj.lexicon).length === 0)
    throw bad('"lexicon" must be a non-empty object {word: [unit, ...]}')
  const lexicon = new Map<string, string[]>()
  for (const [w, p] of Object.entries(obj.lexicon)) {
    if (!Array.isArray(p) || p.length === 0) throw bad(`"lexicon.${w}" must be a non-empty array of units`)
    for (const u of p)
      if (typeof u !== 'string' || !units.index.has(u))
        throw bad(`"lexicon.${w}" uses ${JSON.stringify(u)}, which is not one of the units`)
    lexicon.set(w, p as string[])
  }
  if (!isObj(obj.transitions)) throw bad('"transitions" must be an object {self_logp, forward_logp}')
  const self = numArray(obj.transitions.self_logp, units.numPdfs, 'transitions.self_logp', bad)
  const fwd = numArray(obj.transitions.forward_logp, units.numPdfs, 'transitions.forward_logp', bad)
  const selfLoop = new Float64Array(units.numPdfs)
  for (let p = 0; p < units.numPdfs; p++) {
    const a = Math.exp(self[p]!),
      b = Math.exp(fwd[p]!)
    if (!(a > 0 && a < 1) || Math.abs(a + b - 1) > 1e-6) {
      throw bad(
        `pdf ${p}: exp(self_logp) + exp(forward_logp) = ${a} + ${b}, expected two probabilities in (0, 1) summing to 1`,
      )
    }
    selfLoop[p] = a
  }
  let priors: Float64Array | null = null
  if (obj.priors !== null && obj.priors !== undefined) {
    priors = numArray(obj.priors, units.numPdfs, 'priors', bad)
    let sum = 0
    priors.forEach((v, i) => {
      if (!(v > 0)) throw bad(`"priors[${i}]" must be > 0, got ${v}`)
      sum += v
    })
    if (Math.abs(sum - 1) > 1e-4) throw bad(`"priors" sum to ${sum}, expected 1`)
  }
  return { units, lexicon, silence, transitions: { selfLoop }, priors }
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
