/**
 * Lexicons: word → unit sequence. Two styles for the digit task:
 * - whole-word: each word is its own unit (one N-state HMM per digit, the FSDD recipe);
 * - phone-based: CMU dictionary pronunciations (stress removed, lower case) over shared phones.
 */
import { TopologyError, type UnitSet } from './topology.js'

export type Lexicon = ReadonlyMap<string, readonly string[]>

/** CMUdict pronunciations of the spoken digits (stress marks dropped). */
export const CMU_DIGIT_PRONUNCIATIONS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  zero: ['z', 'iy', 'r', 'ow'],
  oh: ['ow'],
  one: ['w', 'ah', 'n'],
  two: ['t', 'uw'],
  three: ['th', 'r', 'iy'],
  four: ['f', 'ao', 'r'],
  five: ['f', 'ay', 'v'],
  six: ['s', 'ih', 'k', 's'],
  seven: ['s', 'eh', 'v', 'ah', 'n'],
  eight: ['ey', 't'],
  nine: ['n', 'ay', 'n'],
})

export const DIGIT_WORDS: readonly string[] = Object.freeze([
  'zero',
  'one',
  'two',
  'three',
  'four',
  'five',
  'six',
  'seven',
  'eight',
  'nine',
  'oh',
])

/** Each word is a unit of its own. */
export function wholeWordLexicon(words: readonly string[]): Lexicon {
  return new Map(words.map((w) => [w, [w]]))
}

/** The phone lexicon for the given digit words (default all eleven). */
export function digitPhoneLexicon(words: readonly string[] = DIGIT_WORDS): Lexicon {
  return new Map(
    words.map((w) => {
      const p = CMU_DIGIT_PRONUNCIATIONS[w]
      if (!p) throw new TopologyError(`no built-in pronunciation for "${w}"`)
      return [w, p]
    }),
  )
}

/** Distinct units used by a lexicon, in first-use order (for makeUnitSet). */
export function lexiconUnits(lex: Lexicon): string[] {
  const seen = new Set<string>()
  for (const units of lex.values()) for (const u of units) seen.add(u)
  return [...seen]
}

/** Pronunciation of a word, checked against the unit set. */
export function pronounce(lex: Lexicon, word: string, units?: UnitSet): readonly string[] {
  const p = lex.get(word)
  if (!p || p.length === 0) throw new TopologyError(`word "${word}" is not in the lexicon`)
  if (units)
    for (const u of p)
      if (!units.index.has(u)) throw new TopologyError(`unit "${u}" of word "${word}" is not in the unit set`)
  return p
}

/** The pdf sequence of a word: its units' states in order (used by flat start). */
export function wordPdfs(lex: Lexicon, word: string, units: UnitSet): Int32Array {
  const p = pronounce(lex, word, units)
  const out: number[] = []
  for (const name of p) {
    const u = units.index.get(name)!
    for (let k = 0; k < units.numStates[u]!; k++) out.push(units.pdfOffset[u]! + k)
  }
  return Int32Array.from(out)
}
