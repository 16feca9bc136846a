// Tests for the HMM core: hand-computed toy alignments and decodes, LM estimates computed by
// hand, flat start, priors, transition re-estimation, and digit-string recovery from noisy scores.
import t from 'tap'
import {
  makeUnitSet,
  uniformTransitions,
  reestimateTransitions,
  wholeWordLexicon,
  digitPhoneLexicon,
  lexiconUnits,
  wordPdfs,
  DIGIT_WORDS,
  buildAlignGraph,
  buildLoopGraph,
  minPathFrames,
  viterbiAlign,
  AlignmentError,
  decode,
  Decoder,
  estimateBigram,
  estimateUnigram,
  uniformLm,
  lmLogProb,
  estimatePriors,
  posteriorsToLoglik,
  uniformSegmentation,
  flatStartLabels,
  FlatStartError,
  type FrameScores,
} from '../stages/hmm/index.js'

const scoresOf = (rows: number[][]): FrameScores => ({
  numFrames: rows.length,
  numPdfs: rows[0]!.length,
  data: Float32Array.from(rows.flat()),
})
const L = Math.log

t.test('viterbiAlign: toy HMM with a hand-computed best path', async (t) => {
  // Transcript "a b", whole-word units with 2 states: pdfs a0=0 a1=1 b0=2 b1=3.
  // All transitions are 0.5 (self or forward, final exit too), so every 6-frame path pays
  // 6·ln 0.5 and the emissions decide. Candidates (state per frame):
  //   [0,0,1,2,2,3]: 0 + 0 − 2 + 0 + 0 + 0 = −2      <- best
  //   [0,1,2,2,2,3]: 0 − 1.5 − 1 + 0 + 0 + 0 = −2.5
  //   [0,0,1,1,2,3]: 0 + 0 − 2 − 3 + 0 + 0 = −5
  //   [0,0,0,1,2,3]: 0 + 0 − 3 − 3 + 0 + 0 = −6      (every other path is worse still)
  // so the best log-likelihood is −2 + 6·ln 0.5.
  const units = makeUnitSet(['a', 'b'], 2)
  const g = buildAlignGraph(['a', 'b'], wholeWordLexicon(['a', 'b']), units, uniformTransitions(units.numPdfs))
  const s = scoresOf([
    [0, -3, -3, -3],
    [0, -1.5, -3, -3],
    [-3, -2, -1, -3],
    [-3, -3, 0, -3],
    [-3, -3, 0, -3],
    [-3, -3, -3, 0],
  ])
  const r = viterbiAlign(g, s, units.units)
  t.same([...r.pdfs], [0, 0, 1, 2, 2, 3])
  t.ok(Math.abs(r.logLik - (-2 + 6 * L(0.5))) < 1e-9, `logLik ${r.logLik}`)
  t.same(r.words, [
    { label: 'a', start: 0, end: 3, silence: false },
    { label: 'b', start: 3, end: 6, silence: false },
  ])
  t.same(
    r.units.map((u) => [u.label, u.start, u.end]),
    [
      ['a', 0, 3],
      ['b', 3, 6],
    ],
  )
})

t.test('viterbiAlign: too-short utterance is a typed error', async (t) => {
  const units = makeUnitSet(['a', 'b'], 2)
  const g = buildAlignGraph(['a', 'b'], wholeWordLexicon(['a', 'b']), units, uniformTransitions(4))
  t.equal(minPathFrames(g), 4)
  const err = t.throws(() =>
    viterbiAlign(
      g,
      scoresOf([
        [0, 0, 0, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
      ]),
    ),
  ) as unknown
  t.ok(err instanceof AlignmentError)
  t.same(
    [(err as AlignmentError).code, (err as AlignmentError).numFrames, (err as AlignmentError).minFrames],
    ['too-short', 3, 4],
  )
})

t.test('viterbiAlign: optional silence and phone units', async (t) => {
  // "two" = t uw (1 state each) with optional 1-state silence; frames: sil sil t uw uw sil
  const units = makeUnitSet(['sil', 't', 'uw'], 1)
  const lex = new Map([['two', ['t', 'uw']]])
  const g = buildAlignGraph(['two'], lex, units, uniformTransitions(3), { unit: 'sil' })
  t.equal(minPathFrames(g), 2, 'both silences are optional')
  const r = viterbiAlign(
    g,
    scoresOf([
      [0, -4, -4],
      [0, -4, -4],
      [-4, 0, -4],
      [-4, -4, 0],
      [-4, -4, 0],
      [0, -4, -4],
    ]),
    units.units,
  )
  t.same(
    r.words.map((w) => [w.label, w.start, w.end, w.silence]),
    [
      ['<sil>', 0, 2, true],
      ['two', 2, 5, false],
      ['<sil>', 5, 6, true],
    ],
  )
  t.same(
    r.units.map((w) => [w.label, w.start, w.end]),
    [
      ['sil', 0, 2],
      ['t', 2, 3],
      ['uw', 3, 5],
      ['sil', 5, 6],
    ],
  )
})

t.test('decode: toy loop with a hand-computed best path', async (t) => {
  // Words a, b (1 state each, pdf 0 and 1), uniform LM: P(a)=P(b)=P(</s>)=1/3 after any history.
  // Frames favour a, a, b, b (0 for the right pdf, −5 for the wrong one).
  // "a b" = init ln⅓ + self ln½ + (exit ln½ + ln⅓) + self ln½ + final (ln½ + ln⅓) = 3 ln⅓ + 4 ln½.
  // "a a b b" pays ln⅓ instead of nothing at each extra word entry: worse by 2 ln 3.
  // Any path putting a frame on the wrong word pays −5: worse.
  const units = makeUnitSet(['a', 'b'], 1)
  const g = buildLoopGraph(wholeWordLexicon(['a', 'b']), units, uniformTransitions(2), { lm: uniformLm(['a', 'b']) })
  const r = decode(
    g,
    scoresOf([
      [0, -5],
      [0, -5],
      [-5, 0],
      [-5, 0],
    ]),
    { beam: 50 },
  )
  t.same(r.words, ['a', 'b'])
  t.ok(r.reachedFinal)
  t.ok(Math.abs(r.score - (3 * L(1 / 3) + 4 * L(0.5))) < 1e-9, `score ${r.score}`)
  t.same(
    r.segments.map((s) => [s.label, s.start, s.end]),
    [
      ['a', 0, 2],
      ['b', 2, 4],
    ],
  )
  // the same search streamed frame by frame, with a partial result after two frames
  const dec = new Decoder(g, { beam: 50 })
  const s = scoresOf([
    [0, -5],
    [0, -5],
    [-5, 0],
    [-5, 0],
  ])
  dec.pushFrame(s.data.subarray(0, 2))
  dec.pushFrame(s.data.subarray(2, 4))
  t.same(dec.result().words, ['a'])
  dec.pushFrame(s.data.subarray(4, 6))
  dec.pushFrame(s.data.subarray(6, 8))
  t.same(dec.result().words, ['a', 'b'])
  // a large insertion penalty merges the two words into the cheaper single-word path
  const g2 = buildLoopGraph(wholeWordLexicon(['a', 'b']), units, uniformTransitions(2), {
    lm: uniformLm(['a', 'b']),
    insertionPenalty: -20,
  })
  t.equal(decode(g2, s, { beam: 50 }).words.length, 1)
})

/** Deterministic PRNG (LCG) so the synthetic data are the same on every run. */
function lcg(seed: number) {
  let x = seed >>> 0
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0
    return x / 2 ** 32
  }
}

t.test('decode recovers digit strings from noisy near-one-hot scores', async (t) => {
  const rnd = lcg(7)
  const unitNames = ['sil', ...DIGIT_WORDS]
  const units = makeUnitSet(unitNames, (u) => (u === 'sil' ? 1 : 3))
  const lex = wholeWordLexicon(DIGIT_WORDS)
  const g = buildLoopGraph(lex, units, uniformTransitions(units.numPdfs), {
    lm: uniformLm(DIGIT_WORDS),
    silence: { unit: 'sil', prob: 0.5 },
    insertionPenalty: -1,
  })
  for (let trial = 0; trial < 5; trial++) {
    const digits = Array.from({ length: 1 + Math.floor(rnd() * 7) }, () => DIGIT_WORDS[Math.floor(rnd() * 11)]!)
    if (trial === 0) digits.splice(0, digits.length, 'one', 'one', 'seven', 'oh', 'oh')
    // frame labels: 2 silence frames, each digit's 3 states × 3..5 frames, a pause only sometimes
    const labels: number[] = [0, 0]
    for (const d of digits) {
      const pdfs = wordPdfs(lex, d, units)
      for (const p of pdfs) for (let k = 0, n = 3 + Math.floor(rnd() * 3); k < n; k++) labels.push(p)
      if (rnd() < 0.5) labels.push(0, 0)
    }
    labels.push(0, 0)
    const P = units.numPdfs
    const data = new Float32Array(labels.length * P)
    labels.forEach((lab, f) => {
      for (let p = 0; p < P; p++) {
        const post = p === lab ? 0.7 : 0.3 / (P - 1)
        data[f * P + p] = Math.log(post) + (rnd() - 0.5) * 1.0
      }
    })
    const r = decode(g, { numFrames: labels.length, numPdfs: P, data }, { beam: 30, maxActive: 200 })
    t.same(r.words, digits, `trial ${trial}: ${digits.join(' ')}`)
    t.equal(r.segments[r.segments.length - 1]!.end, labels.length)
  }
})

t.test('bigram LM estimates match hand computation', async (t) => {
  // corpus: "a b", "a", "b b". Bigram counts: <s>→a 2, <s>→b 1, a→b 1, a→</s> 1, b→b 1, b→</s> 2.
  const corpus = [['a', 'b'], ['a'], ['b', 'b']]
  const near = (x: number, y: number, m: string) => t.ok(Math.abs(x - y) < 1e-12, `${m}: ${x} vs ${y}`)
  // add-1 over |V+1| = 3 outcomes: P(a|<s>) = 3/6, P(b|a) = 2/5, P(a|a) = 1/5, P(</s>|b) = 3/6
  const add1 = estimateBigram(['a', 'b'], corpus, { kind: 'add-k', k: 1 })
  near(lmLogProb(add1, '<s>', 'a'), L(3 / 6), 'add-1 P(a|<s>)')
  near(lmLogProb(add1, 'a', 'b'), L(2 / 5), 'add-1 P(b|a)')
  near(lmLogProb(add1, 'a', 'a'), L(1 / 5), 'add-1 P(a|a)')
  near(lmLogProb(add1, 'b', '</s>'), L(3 / 6), 'add-1 P(</s>|b)')
  // Witten–Bell: unigram Pu = (c+1)/(8+3): a 3/11, b 4/11, </s> 4/11.
  // h=a: c=2, T=2: P(b|a) = (1 + 2·4/11)/4 = 19/44, P(a|a) = (0 + 2·3/11)/4 = 6/44
  // h=<s>: c=3, T=2: P(a|<s>) = (2 + 6/11)/5 = 28/55, P(</s>|<s>) = (8/11)/5 = 8/55
  const wb = estimateBigram(['a', 'b'], corpus, { kind: 'witten-bell' })
  near(lmLogProb(wb, 'a', 'b'), L(19 / 44), 'WB P(b|a)')
  near(lmLogProb(wb, 'a', 'a'), L(6 / 44), 'WB P(a|a)')
  near(lmLogProb(wb, '<s>', 'a'), L(28 / 55), 'WB P(a|<s>)')
  near(lmLogProb(wb, '<s>', '</s>'), L(8 / 55), 'WB P(</s>|<s>)')
  for (const lm of [add1, wb]) {
    for (const h of ['<s>', 'a', 'b']) {
      const z = ['a', 'b', '</s>'].reduce((s, w) => s + Math.exp(lmLogProb(lm, h, w)), 0)
      near(z, 1, `row ${h} sums to one`)
    }
  }
  // unigram with add-1: counts a 2, b 3, </s> 3 of 8 → P(b) = 4/11 whatever the history
  const uni = estimateUnigram(['a', 'b'], corpus)
  near(lmLogProb(uni, 'a', 'b'), L(4 / 11), 'unigram P(b)')
  t.throws(() => estimateBigram(['a'], [['z']]), /not in the vocabulary/)
})

t.test('flat start splits evenly', async (t) => {
  t.same([...uniformSegmentation(10, 3)], [0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
  t.same([...uniformSegmentation(6, 3)], [0, 0, 1, 1, 2, 2])
  t.throws(() => uniformSegmentation(2, 3), FlatStartError)
  const units = makeUnitSet(['sil', 'one', 'two'], (u) => (u === 'sil' ? 1 : 2))
  const lex = wholeWordLexicon(['one', 'two'])
  // one = pdfs 1,2; two = pdfs 3,4; silence pdf 0 outside the spans
  const labels = flatStartLabels(
    12,
    [
      { start: 1, end: 5, pdfs: wordPdfs(lex, 'one', units) },
      { start: 6, end: 11, pdfs: wordPdfs(lex, 'two', units) },
    ],
    0,
  )
  t.same([...labels], [0, 1, 1, 2, 2, 0, 3, 3, 3, 4, 4, 0])
})

t.test('priors, hybrid log-likelihoods and transition re-estimation', async (t) => {
  // counts 3,1,0 of 4 → 0.75, 0.25, floor 0.01 → renormalised by 1.01
  const pri = estimatePriors(3, [[0, 0, 1], [0]], 0.01)
  t.same(
    [...pri].map((x) => +x.toFixed(6)),
    [0.75 / 1.01, 0.25 / 1.01, 0.01 / 1.01].map((x) => +x.toFixed(6)),
  )
  const ll = posteriorsToLoglik({ numFrames: 1, numPdfs: 3, data: Float32Array.from([0.5, 0.25, 0.25]) }, pri, {
    acousticScale: 0.1,
  })
  t.ok(Math.abs(ll.data[0]! - 0.1 * (L(0.5) - L(0.75 / 1.01))) < 1e-6)
  t.ok(Math.abs(ll.data[2]! - 0.1 * (L(0.25) - L(0.01 / 1.01))) < 1e-6)
  // state 0 stays twice and leaves once → (2+1)/(3+2) = 0.6; state 1 leaves once → 1/3
  const tm = reestimateTransitions(2, [{ states: Int32Array.from([0, 0, 0, 1]), pdfOfState: Int32Array.from([0, 1]) }])
  t.same(
    [...tm.selfLoop].map((x) => +x.toFixed(9)),
    [0.6, +(1 / 3).toFixed(9)],
  )
})

t.test('lexicons', async (t) => {
  const lex = digitPhoneLexicon()
  t.same(lex.get('seven'), ['s', 'eh', 'v', 'ah', 'n'])
  t.same(lex.get('oh'), ['ow'])
  t.equal(lexiconUnits(lex).length, 19, 'distinct phones in the eleven digits')
  const units = makeUnitSet(lexiconUnits(lex), 3)
  t.same(
    [...wordPdfs(lex, 'two', units)],
    [
      ...[0, 1, 2].map((k) => units.pdfOffset[units.index.get('t')!]! + k),
      ...[0, 1, 2].map((k) => units.pdfOffset[units.index.get('uw')!]! + k),
    ],
  )
})
