// Unit and property tests for the scoring core (the sclite goldens are in score-sclite.test.ts).
import t from 'tap'
import fc from 'fast-check'
import { alignWords, levenshtein, SCLITE_COSTS, UNIT_COSTS } from '../stages/scoring/align.js'
import { parseTrn, speakerOf, TrnError } from '../stages/scoring/trn.js'
import { scoreTrn, ScoringError } from '../stages/scoring/score.js'
import { fmt1, scoreToJson } from '../stages/scoring/report.js'
import { applyLabelMap, labelMapFrom, parseLabelMap, LabelMapError } from '../stages/scoring/label-map.js'
import {
  TIMIT_61_TO_48,
  TIMIT_61_TO_39,
  TIMIT_TO_39,
  TIMIT_PHONES_39,
  TIMIT_PHONES_48,
  TIMIT_PHONES_61,
} from '../stages/scoring/timit-phones.js'

const words = fc.array(fc.constantFrom('a', 'b', 'c', 'd'), { maxLength: 12 })

/** Independent weighted edit distance (plain min over the three moves). */
function weighted(x: string[], y: string[], c = SCLITE_COSTS): number {
  const d = Array.from({ length: x.length + 1 }, (_, i) =>
    Array.from({ length: y.length + 1 }, (_, j) => (i === 0 ? j * c.ins : j === 0 ? i * c.del : 0)),
  )
  for (let i = 1; i <= x.length; i++)
    for (let j = 1; j <= y.length; j++)
      d[i]![j] = Math.min(
        d[i - 1]![j]! + c.del,
        d[i]![j - 1]! + c.ins,
        d[i - 1]![j - 1]! + (x[i - 1] === y[j - 1] ? 0 : c.sub),
      )
  return d[x.length]![y.length]!
}

t.test('property: with unit costs the error count is the Levenshtein distance', async (t) => {
  fc.assert(
    fc.property(words, words, (r, h) => {
      const a = alignWords(r, h, UNIT_COSTS)
      return (
        a.sub + a.del + a.ins === levenshtein(r, h) &&
        a.corr + a.sub + a.del === r.length &&
        a.corr + a.sub + a.ins === h.length
      )
    }),
    { numRuns: 500, seed: 42 },
  )
  t.pass('500 random pairs')
})

t.test('property: with sclite costs the path is weight-optimal and errors >= Levenshtein', async (t) => {
  fc.assert(
    fc.property(words, words, (r, h) => {
      const a = alignWords(r, h, SCLITE_COSTS)
      const w = 4 * a.sub + 3 * (a.del + a.ins)
      return a.cost === w && w === weighted(r, h) && a.sub + a.del + a.ins >= levenshtein(r, h)
    }),
    { numRuns: 500, seed: 7 },
  )
  // the counterexample to "errors == Levenshtein" under sclite's weights (golden case 10)
  const a = alignWords(['a', 'b', 'c', 'x', 'y'], ['x', 'y', 'd', 'e', 'f'])
  t.same([a.corr, a.sub, a.del, a.ins], [2, 0, 3, 3])
  t.equal(levenshtein(['a', 'b', 'c', 'x', 'y'], ['x', 'y', 'd', 'e', 'f']), 5)
})

t.test('tie-breaking: diagonal first, then deletion, insertion last', async (t) => {
  // ref "a b" hyp "b a": D C I (cost 6) rather than I C D or S S (8)
  t.equal(
    alignWords(['a', 'b'], ['b', 'a'])
      .pairs.map((p) => p.op)
      .join(''),
    'DCI',
  )
  // ref "a" hyp "b c": sub and ins tie at 7 in two orders; sclite ends with the substitution
  t.equal(
    alignWords(['a'], ['b', 'c'])
      .pairs.map((p) => p.op)
      .join(''),
    'IS',
  )
  t.same(
    alignWords([], ['x', 'y']).pairs.map((p) => p.op),
    ['I', 'I'],
  )
  t.same(alignWords(['x'], []).pairs, [{ op: 'D', ref: 0, hyp: -1 }])
})

t.test('trn parsing follows sclite', async (t) => {
  const e = parseTrn(';; comment\n\n  \nHello  World (SPK_a-Utt1) trailing\n(x-2)\n')
  t.same(
    e.map((x) => [x.id, x.speaker, x.words, x.line]),
    [
      ['spk_a-utt1', 'spk_a', ['hello', 'world'], 4],
      ['x-2', 'x', [], 5],
    ],
  )
  t.equal(parseTrn('A (S-1)\n', { caseSensitive: true })[0]!.words[0], 'A')
  t.equal(speakerOf('ab_cd'), 'ab')
  t.throws(() => speakerOf('nodash'), TrnError)
  t.throws(() => parseTrn('no id here\n'), /no "\(utterance-id\)"/)
  t.throws(() => parseTrn('{ a / b } (s-1)\n'), /not supported/)
})

t.test('scoreTrn errors and JSON', async (t) => {
  const refs = parseTrn('a b c (s-1)\n')
  t.throws(() => scoreTrn(refs, parseTrn('a (s-2)\n')), ScoringError)
  t.throws(() => scoreTrn(parseTrn('a (s-1)\nb (s-1)\n'), parseTrn('a (s-1)\n')), /two different reference texts/)
  const res = scoreTrn(refs, parseTrn('a x (s-1)\n'))
  const j = scoreToJson(res, true) as { overall: unknown; utterances: unknown }
  t.same(j.overall, {
    speaker: 'Sum/Avg',
    sentences: 1,
    words: 3,
    corr: 1,
    sub: 1,
    del: 1,
    ins: 0,
    errors: 2,
    sentenceErrors: 1,
    // same operation order as sclite: num / den * 100
    pct: { corr: (1 / 3) * 100, sub: (1 / 3) * 100, del: (1 / 3) * 100, ins: 0, err: (2 / 3) * 100, sentErr: 100 },
    rounded: { corr: 33.3, sub: 33.3, del: 33.3, ins: 0, err: 66.7, sentErr: 100 },
  })
  t.same(j.utterances, [{ id: 's-1', speaker: 's', corr: 1, sub: 1, del: 1, ins: 0, ops: 'CDS' }]) // as sclite: REF a B C / HYP a * X
})

t.test('sclite rounding rounds halves up', async (t) => {
  t.equal(fmt1(6.25), '6.3')
  t.equal(fmt1(93.75), '93.8')
  t.equal(fmt1(100 / 3), '33.3')
  t.equal(fmt1(0), '0.0')
})

t.test('label maps', async (t) => {
  const m = parseLabelMap('# fold\nao aa\nq\n\nax ah\n')
  t.same(
    [...m],
    [
      ['ao', 'aa'],
      ['q', null],
      ['ax', 'ah'],
    ],
  )
  t.same(applyLabelMap(['ao', 'q', 'b', 'ax'], m), ['aa', 'b', 'ah'])
  t.throws(() => parseLabelMap('a b c\n'), LabelMapError)
  t.throws(() => parseLabelMap('a b\na c\n'), /mapped twice/)
  // mapping is applied to both sides before alignment: "ao" vs "aa" becomes correct
  const res = scoreTrn(parseTrn('ao q ix (s-1)\n'), parseTrn('aa ih (s-1)\n'), { map: labelMapFrom(TIMIT_TO_39) })
  t.same([res.overall.corr, res.overall.errors, res.overall.words], [2, 0, 2])
})

t.test('TIMIT 61/48/39 tables', async (t) => {
  t.equal(TIMIT_PHONES_61.length, 61)
  t.equal(TIMIT_PHONES_48.length, 48)
  t.equal(TIMIT_PHONES_39.length, 39)
  t.equal(TIMIT_61_TO_48.q, null)
  t.equal(TIMIT_61_TO_39.q, null)
  t.same(new Set(Object.values(TIMIT_61_TO_48).filter((x) => x !== null)), new Set(TIMIT_PHONES_48))
  t.same(
    ['bcl', 'kcl', 'h#', 'pau', 'epi', 'ao', 'ax-h', 'axr', 'el', 'en', 'eng', 'ix', 'zh', 'ux', 'hv', 'nx', 'em'].map(
      (p) => TIMIT_61_TO_39[p],
    ),
    ['sil', 'sil', 'sil', 'sil', 'sil', 'aa', 'ah', 'er', 'l', 'n', 'ng', 'ih', 'sh', 'uw', 'hh', 'n', 'm'],
  )
  t.equal(TIMIT_TO_39.vcl, 'sil')
  t.equal(TIMIT_TO_39.cl, 'sil')
})
