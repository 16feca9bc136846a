/**
 * The HMM model file's JSON form, with nothing but the data: no file system, no Arrow, so that the
 * browser page of `ktp export --web` (stages/web/) reads the very same format with the very same
 * checks. model.ts adds reading and writing files and the hmm-init options.
 */
import { KtpError } from '../../schemas/errors.js'
import { makeUnitSet, type Lexicon, type TransitionModel, type UnitSet } from './index.js'

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
