// Fixture-free tests of the HMM model file (ktp.hmm@1: round trip, validation errors that name
// the field), lexicon/CTM/text parsing, and the pure flat-start and alignment helpers.
import t from 'tap'
import { join } from 'node:path'
import { writeFileSync } from 'node:fs'
import { KtpError } from '../schemas/errors.js'
import { makeSchema } from '../schemas/kinds.js'
import { withMeta } from '../schemas/metadata.js'
import { makeUttBatch } from '../schemas/utterance.js'
import {
  checkInventory,
  formatInventory,
  hmmFingerprint,
  hmmFromJson,
  hmmInitOptions,
  hmmToJson,
  initHmm,
  parseLexicon,
  pdfNames,
  readHmm,
  vocabulary,
  writeHmm,
  type HmmModel,
} from '../stages/hmm/model.js'
import { alignBatch, alignOptions, flatStartSpans, flatStartWhole, labelsSchema } from '../stages/align/stage.js'
import { parseCtm, parseKaldiText, parseSentences, formatTrn, secondsToFrame } from '../stages/formats/transcripts.js'
import { tmp } from './helpers.js'

const init = (o: Record<string, unknown>): HmmModel => initHmm(hmmInitOptions.parse(o))
const msg = (f: () => unknown): string => {
  try {
    f()
  } catch (e) {
    if (!(e instanceof KtpError)) throw e
    return e.message
  }
  throw new Error('expected a KtpError')
}

t.test('initHmm: units, pdf layout, names, inventory', async (t) => {
  const m = init({ words: 'one,two', states: 3, silence: 'sil', silenceStates: 2 })
  t.same(m.units.units, ['sil', 'one', 'two'], 'the silence unit comes first')
  t.equal(m.units.numPdfs, 8)
  t.same(pdfNames(m.units), ['sil_0', 'sil_1', 'one_0', 'one_1', 'one_2', 'two_0', 'two_1', 'two_2'])
  t.equal(formatInventory(m.units).split('\n')[2], 'one_0 2')
  t.same(vocabulary(m), ['one', 'two'])
  t.same([...m.transitions.selfLoop], new Array(8).fill(0.5))
  const phones = init({ phonesFrom: 'timit48', states: 1 })
  t.equal(phones.units.numPdfs, 48)
  t.same(pdfNames(phones.units).slice(0, 3), ['aa', 'ae', 'ah'], 'one-state units are named by themselves')
  const cmu = init({ cmuDigits: true, states: 3 })
  t.same(cmu.lexicon.get('seven'), ['s', 'eh', 'v', 'ah', 'n'])
  t.equal(init({ wholeWordDigits: true, states: 5 }).units.numPdfs, 50, 'ten digits × 5 states')
  t.match(
    msg(() => init({ states: 3 })),
    /give exactly one of --lexicon FILE/,
  )
  t.match(
    msg(() => init({ words: 'a', wholeWordDigits: true })),
    /exactly one/,
  )
  t.match(
    msg(() => init({ words: 'a,a' })),
    /--words: expected distinct/,
  )
})

t.test('hmm.json round trip: JSON and disk, fingerprint ignores the producer', async (t) => {
  const m = init({ words: 'yes,no', states: 2, silence: 'sil', selfLoop: 0.6 })
  m.priors = Float64Array.from([0.3, 0.1, 0.2, 0.1, 0.2, 0.1])
  const back = hmmFromJson(JSON.parse(JSON.stringify(hmmToJson(m))), 'x.json')
  t.same(back.units.units, m.units.units)
  t.same([...back.units.numStates], [2, 2, 2])
  t.same([...back.lexicon], [...m.lexicon])
  t.equal(back.silence, 'sil')
  for (let p = 0; p < 6; p++) t.ok(Math.abs(back.transitions.selfLoop[p]! - 0.6) < 1e-12)
  t.same([...back.priors!], [...m.priors])
  const path = join(tmp('ktp-hmm-'), 'hmm.json')
  writeHmm(path, m, { stage: 'test' })
  const disk = readHmm(path)
  t.equal(hmmFingerprint(disk), hmmFingerprint(m))
  t.not(hmmFingerprint({ ...m, priors: null }), hmmFingerprint(m), 'priors change the fingerprint')
})

t.test('hmm.json validation errors name the file and the field', async (t) => {
  /** hmm.json as hmmToJson writes it: the fields the cases below break. */
  interface HmmJson {
    format: string
    version: number
    units: { name: string; states: number }[]
    silence: string | null
    lexicon: Record<string, string[]>
    num_pdfs: number
    transitions: { self_logp: number[]; forward_logp: number[] }
    priors: number[] | null
  }
  const good = () => hmmToJson(init({ words: 'a,b', states: 2, silence: 'sil' })) as HmmJson
  const bad = (edit: (j: HmmJson) => void) => {
    const j = good()
    edit(j)
    return msg(() => hmmFromJson(j, 'h.json'))
  }
  t.match(
    bad((j) => {
      j.format = 'other'
    }),
    /^h\.json: "format" is "other", expected "ktp\.hmm"/,
  )
  t.match(
    bad((j) => {
      j.version = 2
    }),
    /version 2 is not supported; this ktp reads ktp\.hmm@1/,
  )
  t.match(
    bad((j) => {
      j.units.push({ name: 'a', states: 1 })
    }),
    /lists a unit twice: a/,
  )
  t.match(
    bad((j) => {
      j.units[1].states = 0
    }),
    /"units\[1\]\.states" must be an integer ≥ 1, got 0/,
  )
  t.match(
    bad((j) => {
      j.num_pdfs = 7
    }),
    /"num_pdfs" is 7 but the units have 6 states in all/,
  )
  t.match(
    bad((j) => {
      j.silence = 'pau'
    }),
    /"silence" is "pau", which is not one of the units/,
  )
  t.match(
    bad((j) => {
      j.lexicon.c = ['c']
    }),
    /"lexicon\.c" uses "c", which is not one of the units/,
  )
  t.match(
    bad((j) => {
      j.transitions.self_logp = [0]
    }),
    /"transitions\.self_logp" must be an array of 6 numbers \(one per pdf\), got 1 values/,
  )
  t.match(
    bad((j) => {
      j.transitions.forward_logp[3] = Math.log(0.7)
    }),
    /pdf 3: exp\(self_logp\) \+ exp\(forward_logp\) = 0\.5 \+ 0\.7/,
  )
  t.match(
    bad((j) => {
      j.priors = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    }),
    /"priors" sum to 3, expected 1/,
  )
  t.match(
    bad((j) => {
      j.priors = [1, 0, 0, 0, 0, 0]
    }),
    /"priors\[1\]" must be > 0, got 0/,
  )
  const dir = tmp('ktp-hmm-')
  t.match(
    msg(() => readHmm(join(dir, 'nope.json'))),
    /--hmm .*nope\.json: no such file \(make one with ktp hmm-init\)/,
  )
  writeFileSync(join(dir, 'broken.json'), '{"format": ')
  t.match(
    msg(() => readHmm(join(dir, 'broken.json'))),
    /broken\.json: not valid JSON/,
  )
})

t.test('lexicon, text, CTM and LM-text parsing', async (t) => {
  const lex = parseLexicon('# digits\none w ah n\n\ntwo t uw\n', 'lex.txt')
  t.same(
    [...lex],
    [
      ['one', ['w', 'ah', 'n']],
      ['two', ['t', 'uw']],
    ],
  )
  t.match(
    msg(() => parseLexicon('one w ah n\none w ah n\n', 'lex.txt')),
    /^lex\.txt:2: word "one" appears twice/,
  )
  t.match(
    msg(() => parseLexicon('one\n', 'lex.txt')),
    /^lex\.txt:1: word "one" has no units/,
  )
  t.same(
    [...parseKaldiText('u1 a b\nu2\n', 'text')],
    [
      ['u1', ['a', 'b']],
      ['u2', []],
    ],
  )
  t.match(
    msg(() => parseKaldiText('u1 a\nu1 b\n', 'text')),
    /^text:2: utterance 'u1' appears twice/,
  )
  const ctm = parseCtm(';; comment\nu1 1 0.50 0.20 b\nu1 1 0.10 0.30 a 0.9\n', 'c.ctm')
  t.same(
    ctm.get('u1')!.map((e) => [e.word, e.start, e.duration, e.line]),
    [
      ['a', 0.1, 0.3, 3],
      ['b', 0.5, 0.2, 2],
    ],
    'sorted by start',
  )
  t.match(
    msg(() => parseCtm('u1 1 0.5 -1 a\n', 'c.ctm')),
    /^c\.ctm:1: expected "utt channel start duration word"/,
  )
  t.same(
    parseSentences('a b (s-1)\nc (s-2)\n').map((s) => s.words),
    [['a', 'b'], ['c']],
    'trn: id last',
  )
  t.same(
    parseSentences('s-1 a b\n\ns-2 c\n'),
    [
      { words: ['a', 'b'], line: 1 },
      { words: ['c'], line: 3 },
    ],
    'Kaldi text: id first',
  )
  t.equal(secondsToFrame(0.125, 10), 13)
  t.equal(secondsToFrame(0.3, 10), 30)
  t.equal(formatTrn('s-1', []), '(s-1)\n')
})

t.test('flat start: whole utterance and spans', async (t) => {
  const m = init({ words: 'a,b', states: 2, silence: 'sil', silenceStates: 1 }) // sil=0, a=1,2, b=3,4
  const w = flatStartWhole(m, ['a', 'b'], 10)
  t.same([...w.pdfs], [1, 1, 1, 2, 2, 3, 3, 3, 4, 4], '10 frames over 4 states: ⌊4i/10⌋')
  t.same(
    w.words.map((s) => [s.label, s.start, s.end]),
    [
      ['a', 0, 5],
      ['b', 5, 10],
    ],
  )
  t.throws(() => flatStartWhole(m, ['a', 'b'], 3), /3 frames but the transcript's 4 states/)
  const ctm = parseCtm('u 1 0.01 0.03 a\nu 1 0.04 0.02 <sil>\nu 1 0.06 0.02 b\n', 'c').get('u')!
  const s = flatStartSpans(m, ['a', 'b'], 9, ctm, 10)
  t.same([...s.pdfs], [0, 1, 1, 2, 0, 0, 3, 4, 0])
  t.same(
    s.words.map((x) => [x.label, x.start, x.end, x.silence]),
    [
      ['<sil>', 0, 1, true],
      ['a', 1, 4, false],
      ['<sil>', 4, 6, true],
      ['b', 6, 8, false],
      ['<sil>', 8, 9, true],
    ],
  )
  t.throws(() => flatStartSpans(m, ['b', 'a'], 9, ctm, 10), /CTM words "a b" differ from the transcript "b a"/)
  const noSil = init({ words: 'a,b', states: 2 })
  t.throws(
    () => flatStartSpans(noSil, ['a', 'b'], 9, parseCtm('u 1 0.01 0.03 a\nu 1 0.06 0.02 b\n', 'c').get('u')!, 10),
    /frames 0\.\.0 lie outside every CTM word and the HMM has no silence unit/,
  )
  t.throws(
    () => flatStartSpans(m, ['a'], 9, parseCtm('u 1 0.01 0.01 a\n', 'c').get('u')!, 10),
    /"a" spans 1 frames but has 2 states/,
  )
})

t.test('alignBatch: Viterbi through a batch; failures name the utterance', async (t) => {
  const m = init({ words: 'a,b', states: 1 }) // a=0, b=1
  const schema = makeSchema('soft-dense', { widths: { logp: 2 } })
  const L = Math.log
  const logp = Float32Array.from([L(0.9), L(0.1), L(0.9), L(0.1), L(0.1), L(0.9)])
  const opts = alignOptions.parse({ acousticScale: 1 })
  const ctx = {
    model: m,
    options: opts,
    transcripts: new Map([
      ['u1', ['a', 'b']],
      ['u2', ['a', 'c']],
    ]),
    scores: { f16: false, priors: Float64Array.from([1, 1]), flatPriors: true },
  }
  const out = alignBatch(ctx, labelsSchema(m), makeUttBatch(schema, { utt: 'u1', logp }))
  t.same([...(out.getChild('labels')!.get(0) as unknown as Iterable<number>)], [0, 0, 1])
  t.equal(out.schema.metadata.get('ktp.inventory'), '["a","b"]')
  t.throws(() => alignBatch(ctx, labelsSchema(m), makeUttBatch(schema, { utt: 'u2', logp: logp.slice() })), {
    name: 'UttError',
    utt: 'u2',
    message: /u2: word "c" is not in the lexicon/,
  })
  t.throws(() => alignBatch(ctx, labelsSchema(m), makeUttBatch(schema, { utt: 'u3', logp: logp.slice() })), {
    code: 'no-transcript',
    message: 'u3: no transcript in --text',
  })
})

t.test('checkInventory: metadata naming other classes is refused', async (t) => {
  const m = init({ words: 'a,b', states: 1 })
  const s = makeSchema('soft-dense', { widths: { logp: 2 } })
  checkInventory(withMeta(s, { 'ktp.inventory': '["a","b"]' }), 'x', m)
  checkInventory(withMeta(s, { 'ktp.inventory': 'phones.txt' }), 'x', m)
  t.pass('matching or non-JSON inventories pass')
  t.match(
    msg(() => checkInventory(withMeta(s, { 'ktp.inventory': '["b","a"]' }), 'net.arrow', m)),
    /^net\.arrow: class 0 is "b" in its ktp\.inventory but "a" in the HMM \(2 vs 2 classes\)/,
  )
})
