// End to end on synthetic data, through real `ktp` processes: a 3-word whole-word HMM with
// silence, near-one-hot log-posteriors (plus noise) for known state sequences written as a
// soft-dense Arrow file; align must recover the states and word boundaries, hmm-update the
// counts, decode the words, score 0% WER (and hand-counted errors on a perturbed hypothesis).
import t from 'tap'
import { join } from 'node:path'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { makeSchema } from '../schemas/kinds.js'
import { getVector, makeUttBatch, uttId } from '../schemas/utterance.js'
import { drain } from '../pipeline/io/run-stage.js'
import { BatchEncoder } from '../pipeline/io/arrow-encoder.js'
import { openArrow } from '../pipeline/io/arrow-source.js'
import { KTP, ktp, rng, sh, tmp, writeFeatures } from './helpers.js'

const dir = tmp('ktp-align-')
const hmm = join(dir, 'hmm.json')
// pdfs: sil_0 sil_1 | one_0..2 | two_0..2 | three_0..2
const WORDS = ['one', 'two', 'three']
const C = 11
const wordPdfs = (w: string) => {
  const o = 2 + 3 * WORDS.indexOf(w)
  return [o, o + 1, o + 2]
}

interface Truth {
  utt: string
  words: string[]
  pdfs: number[]
  spans: [string, number, number][]
}

/** A state sequence: optional silences around/between words, 2–5 frames per state. */
function makeTruth(utt: string, words: string[], r: () => number): Truth {
  const pdfs: number[] = []
  const spans: [string, number, number][] = []
  const stay = (p: number) => {
    const n = 2 + Math.floor(r() * 4)
    for (let i = 0; i < n; i++) pdfs.push(p)
  }
  const sil = () => {
    stay(0)
    stay(1)
  }
  sil()
  words.forEach((w, i) => {
    if (i > 0 && r() < 0.5) sil()
    const start = pdfs.length
    wordPdfs(w).forEach(stay)
    spans.push([w, start, pdfs.length])
  })
  sil()
  return { utt, words, pdfs, spans }
}

/** log-softmax of (3 for the true class, 0 elsewhere) + uniform noise in ±0.8: near one-hot. */
function posteriors(pdfs: number[], r: () => number): Float32Array {
  const out = new Float32Array(pdfs.length * C)
  pdfs.forEach((p, f) => {
    const z = Array.from({ length: C }, (_, c) => (c === p ? 3 : 0) + (r() * 1.6 - 0.8))
    const lse = Math.log(z.reduce((a, v) => a + Math.exp(v), 0))
    z.forEach((v, c) => {
      out[f * C + c] = v - lse
    })
  })
  return out
}

function writeSoftDense(path: string, utts: { utt: string; logp: Float32Array }[]): void {
  const schema = makeSchema('soft-dense', { widths: { logp: C }, metadata: { 'ktp.fingerprint': 'toy-net' } })
  const enc = new BatchEncoder(schema, 'file')
  const parts: Uint8Array[] = [...enc.begin()]
  for (const u of utts) parts.push(...enc.encode(makeUttBatch(schema, { utt: u.utt, logp: u.logp })))
  parts.push(...enc.finish())
  writeFileSync(path, Buffer.concat(parts))
}

async function readLabels(path: string): Promise<{ meta: Map<string, string>; rows: Map<string, number[]> }> {
  const src = await openArrow(path, ['labels'])
  const rows = new Map<string, number[]>()
  await drain(
    src.stream(),
    (b) => {
      rows.set(uttId(b), [...getVector(b, 'labels')])
    },
    () => false,
  )
  return { meta: src.schema.metadata, rows }
}

const r = rng(42)
const truths = [
  makeTruth('spk1-u1', ['one', 'two'], r),
  makeTruth('spk1-u2', ['three', 'one', 'three'], r),
  makeTruth('spk2-u1', ['two', 'two'], r),
  makeTruth('spk2-u2', ['three'], r),
]
const text = join(dir, 'text')
writeFileSync(text, `${truths.map((u) => `${u.utt} ${u.words.join(' ')}\n`).join('')}spk3-short one two three\n`)
const scores = join(dir, 'logp.arrow')
const short = { utt: 'spk3-short', logp: posteriors([2, 3, 4, 5, 6], r) } // 5 frames for 9 word states
writeSoftDense(scores, [...truths.map((u) => ({ utt: u.utt, logp: posteriors(u.pdfs, r) })), short])
const ref = join(dir, 'ref.trn')
writeFileSync(ref, truths.map((u) => `${u.words.join(' ')} (${u.utt})\n`).join(''))

t.test('hmm-init writes the model and the pdf inventory', async (t) => {
  const res = ktp([
    'hmm-init',
    '--words',
    'one,two,three',
    '--states',
    '3',
    '--silence',
    'sil',
    '--silence-states',
    '2',
    '-o',
    hmm,
  ])
  t.equal(res.code, 0, res.stderr)
  t.match(res.stderr, /3 words, 4 units, 11 pdfs, silence unit sil/)
  const inv = readFileSync(join(dir, 'hmm.pdfs.txt'), 'utf8').trim().split('\n')
  t.same(inv.slice(0, 3), ['sil_0 0', 'sil_1 1', 'one_0 2'])
  t.equal(inv[10], 'three_2 10')
  const j = JSON.parse(readFileSync(hmm, 'utf8'))
  t.equal(j.format, 'ktp.hmm')
  t.equal(j.num_pdfs, 11)
  t.equal(j.priors, null)
})

t.test('Viterbi align recovers the state sequences and word boundaries; the short one is skipped', async (t) => {
  const out = join(dir, 'ali.arrow')
  const ctm = join(dir, 'ali.ctm')
  const res = ktp(['align', '--hmm', hmm, '--text', text, scores, '-o', out, '--ctm-out', ctm, '--quiet'])
  t.equal(res.code, 1, 'exit 1: one utterance failed')
  t.match(res.stderr, /WARNING spk3-short: utterance has 5 frames but the transcript needs at least 9/)
  t.match(res.stderr, /done 4, failed 1/)
  const { meta, rows } = await readLabels(out)
  t.equal(meta.get('ktp.num_classes'), '11')
  t.same(JSON.parse(meta.get('ktp.inventory')!).slice(0, 3), ['sil_0', 'sil_1', 'one_0'])
  t.same(
    [...rows.keys()],
    truths.map((u) => u.utt),
  )
  for (const u of truths) t.same(rows.get(u.utt), u.pdfs, `${u.utt}: every frame's pdf`)
  const lines = readFileSync(ctm, 'utf8').trim().split('\n')
  const expected = truths.flatMap((u) =>
    u.spans.map(([w, s, e]) => `${u.utt} 1 ${(s / 100).toFixed(2)} ${((e - s) / 100).toFixed(2)} ${w}`),
  )
  t.same(lines, expected, 'word boundaries in seconds (10 ms frames)')
  const again = ktp(['align', '--hmm', hmm, '--text', text, scores, '-o', out])
  t.match(again.stderr, /up to date/)
})

t.test('flat start divides frames evenly, over the utterance or inside CTM spans', async (t) => {
  const feats = join(dir, 'feats.arrow')
  writeFeatures(
    feats,
    [
      { utt: 'spk1-a', frames: 12 },
      { utt: 'spk1-b', frames: 14 },
      { utt: 'spk1-c', frames: 4 },
    ],
    3,
  )
  const ftext = join(dir, 'ftext')
  writeFileSync(ftext, 'spk1-a one two\nspk1-b three\nspk1-c two two\n')
  const out = join(dir, 'flat.arrow')
  const res = ktp(['align', '--hmm', hmm, '--text', ftext, '--flat-start', '--feats', feats, '-o', out, '--quiet'])
  t.equal(res.code, 1)
  t.match(res.stderr, /spk1-c: utterance has 4 frames but the transcript's 6 states need at least 6/)
  const { rows } = await readLabels(out)
  t.same(rows.get('spk1-a'), [2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7], '12 frames over 6 states: 2 each')
  // 14 frames over 3 states: frame i → ⌊3i/14⌋ gives 5, 5, 4 frames
  t.same(rows.get('spk1-b'), [8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 10, 10, 10, 10])

  // inside spans: "one" at 0.02–0.08 s (frames 2..7), "two" at 0.09–0.12 s (9..11); the rest is silence
  const ctm = join(dir, 'spans.ctm')
  writeFileSync(ctm, 'spk1-a 1 0.02 0.06 one\nspk1-a 1 0.09 0.03 two\n')
  const out2 = join(dir, 'flat2.arrow')
  const ctmOut = join(dir, 'flat2.ctm')
  const res2 = ktp([
    'align',
    '--hmm',
    hmm,
    '--text',
    ftext,
    '--flat-start',
    '--feats',
    feats,
    '--ctm',
    ctm,
    '-o',
    out2,
    '--ctm-out',
    ctmOut,
    '--quiet',
  ])
  t.equal(res2.code, 1, 'spk1-b and spk1-c have no spans')
  t.match(res2.stderr, /spk1-b: no word spans in --ctm/)
  const { rows: rows2 } = await readLabels(out2)
  t.same(rows2.get('spk1-a'), [0, 1, 2, 2, 3, 3, 4, 4, 0, 5, 6, 7])
  t.equal(readFileSync(ctmOut, 'utf8'), 'spk1-a 1 0.02 0.06 one\nspk1-a 1 0.09 0.03 two\n')
})

t.test('hmm-update: priors and transitions counted from the alignment', async (t) => {
  const hmm1 = join(dir, 'hmm1.json')
  const res = ktp(['hmm-update', '--hmm', hmm, join(dir, 'ali.arrow'), '-o', hmm1])
  t.equal(res.code, 0, res.stderr)
  const all = truths.flatMap((u) => u.pdfs)
  t.match(res.stderr, new RegExp(`4 utterances, ${all.length} frames`))
  const j = JSON.parse(readFileSync(hmm1, 'utf8'))
  const count = (p: number) => all.filter((x) => x === p).length
  for (const p of [0, 2, 10]) t.ok(Math.abs(j.priors[p] - count(p) / all.length) < 1e-9, `prior of pdf ${p}`)
  // self-loop of one_0: (stays + 1) / (stays + leaves + 2) over the true sequences
  let stay = 0,
    leave = 0
  for (const u of truths)
    u.pdfs.forEach((p, i) => {
      if (p === 2) u.pdfs[i + 1] === 2 ? stay++ : leave++
    })
  t.ok(Math.abs(Math.exp(j.transitions.self_logp[2]) - (stay + 1) / (stay + leave + 2)) < 1e-9)
  const bad = ktp(['hmm-update', '--hmm', hmm, join(dir, 'feats.arrow'), '-o', hmm1])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /feats\.arrow: schema kind is 'features', expected labels/)
})

t.test('decode recovers the words; score gives 0% WER, and the hand-counted errors when perturbed', async (t) => {
  const hyp = join(dir, 'hyp.trn')
  const ctm = join(dir, 'hyp.ctm')
  // acoustic scale 1: these synthetic frames are independent, unlike real ones (hence Kaldi's 0.1 default)
  const res = ktp([
    'decode',
    '--hmm',
    join(dir, 'hmm1.json'),
    '--lm',
    'bigram',
    '--lm-text',
    text,
    '--acoustic-scale',
    '1',
    scores,
    '-o',
    hyp,
    '--ctm-out',
    ctm,
  ])
  t.equal(res.code, 0, res.stderr)
  t.match(res.stderr, /real-time factor [0-9.e-]+ \(search alone/)
  const lines = readFileSync(hyp, 'utf8').split('\n')
  t.same(
    lines.slice(0, 4),
    truths.map((u) => `${u.words.join(' ')} (${u.utt})`),
  )
  const wordsInCtm = readFileSync(ctm, 'utf8')
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('spk1-u1'))
    .map((l) => l.split(' ').slice(2))
  t.same(
    wordsInCtm,
    truths[0]!.spans.map(([w, s, e]) => [(s / 100).toFixed(2), ((e - s) / 100).toFixed(2), w]),
  )

  const hypOk = join(dir, 'hyp-ok.trn')
  writeFileSync(hypOk, `${lines.slice(0, 4).join('\n')}\n`)
  const sc = ktp(['score', '--ref', ref, '--hyp', hypOk, '--json'])
  t.equal(sc.code, 0, sc.stderr)
  const j = JSON.parse(sc.stdout.toString())
  t.same([j.overall.words, j.overall.errors, j.overall.pct.err], [8, 0, 0])

  // one substitution (spk1-u1), one deletion (spk1-u2), one insertion (spk2-u2): 3 errors / 8 words
  const pert = join(dir, 'hyp-pert.trn')
  writeFileSync(pert, 'one three (spk1-u1)\nthree one (spk1-u2)\ntwo two (spk2-u1)\nthree three (spk2-u2)\n')
  const sp = ktp(['score', '--ref', ref, '--hyp', pert, '--json'])
  const p = JSON.parse(sp.stdout.toString())
  t.same([p.overall.corr, p.overall.sub, p.overall.del, p.overall.ins], [6, 1, 1, 1])
  t.equal(p.overall.pct.err, 37.5)
  t.same(
    p.speakers.map((s: { speaker: string; errors: number; words: number }) => [s.speaker, s.errors, s.words]),
    [
      ['spk1', 2, 5],
      ['spk2', 1, 3],
    ],
  )
  const table = ktp(['score', '--ref', ref, '--hyp', pert]).stdout.toString()
  t.match(table, /\| Sum\/Avg\|\s+4\s+8 \| 75\.0\s+12\.5\s+12\.5\s+12\.5\s+37\.5\s+75\.0 \|/)
  t.match(table, /hyp-pert\.trn/, 'titled by the hypothesis file, as sclite')
})

t.test('a real pipe: ktp cat logp.arrow | ktp decode --hmm … -', async (t) => {
  const res = sh(
    `${KTP} cat ${scores} --utts spk1-u1,spk2-u1 | ${KTP} decode --hmm ${join(dir, 'hmm1.json')} --lm uniform --acoustic-scale 1 --insertion-penalty -1 - --quiet`,
  )
  t.equal(res.code, 0, res.stderr)
  t.equal(res.stdout.toString(), 'one two (spk1-u1)\ntwo two (spk2-u1)\n')
})

t.test('decode: a bad utterance is reported and the others decoded; a failed run leaves no trn', async (t) => {
  const nan = join(dir, 'nan.arrow')
  const bad = posteriors(truths[0]!.pdfs, r)
  bad[7] = NaN
  writeSoftDense(nan, [
    { utt: 'spk9-nan', logp: bad },
    { utt: 'spk1-u1', logp: posteriors(truths[0]!.pdfs, r) },
  ])
  const res = ktp(['decode', '--hmm', hmm, '--lm', 'uniform', '--acoustic-scale', '1', nan])
  t.equal(res.code, 1)
  t.match(res.stderr, /WARNING spk9-nan: logp is NaN at frame 0, class 7/)
  t.equal(res.stdout.toString(), 'one two (spk1-u1)\n')
  const out = join(dir, 'never.trn')
  const fatal = ktp(['decode', '--hmm', hmm, '--lm', 'bigram', nan, '-o', out])
  t.equal(fatal.code, 2)
  t.match(fatal.stderr, /--lm bigram is estimated from --lm-text FILE/)
  t.notOk(existsSync(out))
})
