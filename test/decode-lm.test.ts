// The decode stage as a library: LM estimation from training text (hand-counted), its errors,
// and the highland transform over several sources, where a bad utterance does not stop the stream.
import t from 'tap'
import { Readable } from 'node:stream'
import _ from 'highland'
import { type RecordBatch, util } from 'apache-arrow'
import { KtpError, UttError } from '../schemas/errors.js'
import { makeSchema } from '../schemas/kinds.js'
import { makeUttBatch } from '../schemas/utterance.js'
import { hmmInitOptions, initHmm } from '../stages/hmm/model.js'
import {
  decodeBatch,
  decodeGraph,
  decodeOptions,
  decodeStage,
  estimateLm,
  type Hypothesis,
} from '../stages/decode/stage.js'
import { scoresReader } from '../stages/hmm/soft-scores.js'
import { lmLogProb } from '../stages/hmm/index.js'
import { parseSentences } from '../stages/formats/transcripts.js'

const model = initHmm(hmmInitOptions.parse({ words: 'a,b', states: 1, silence: 'sil' })) // sil=0 a=1 b=2
const opts = (o: Record<string, unknown> = {}) => decodeOptions.parse({ acousticScale: 1, ...o })

t.test('estimateLm: counts by hand, silence tokens dropped, unknown words name the line', async (t) => {
  const text = parseSentences('u-1 a sil b\nu-2 a a\n')
  // unigram add-1 over {a, b, </s>}: counts a=3 b=1 </s>=2 (silence dropped), total 6
  const uni = estimateLm(model, opts({ lm: 'unigram' }), text, 'text')
  t.ok(Math.abs(lmLogProb(uni, 'b', 'a') - Math.log(4 / 9)) < 1e-12)
  t.ok(Math.abs(lmLogProb(uni, '<s>', '</s>') - Math.log(3 / 9)) < 1e-12)
  // bigram add-1: after a: a→b 1, a→a 1, a→</s> 1 (3 events) → P(b|a) = 2/6
  const bi = estimateLm(model, opts({ lm: 'bigram', lmSmoothing: 'add-k' }), text, 'text')
  t.ok(Math.abs(lmLogProb(bi, 'a', 'b') - Math.log(2 / 6)) < 1e-12)
  t.ok(Math.abs(lmLogProb(estimateLm(model, opts({ lm: 'uniform' }), null, ''), 'a', 'b') - Math.log(1 / 3)) < 1e-12)
  t.throws(
    () => estimateLm(model, opts(), parseSentences('u-1 a\n\nu-2 a zebra\n'), 'train.txt'),
    new KtpError('bad-lm-text', 'train.txt:3: word "zebra" is not in the HMM lexicon'),
  )
  t.throws(() => estimateLm(model, opts(), null, ''), /--lm bigram is estimated from --lm-text FILE/)
})

const schema = makeSchema('soft-dense', { widths: { logp: 3 } })
const L = Math.log
/** Frames whose best pdf follows `seq` (0 = sil, 1 = a, 2 = b). */
function utt(id: string, seq: number[]): RecordBatch {
  const logp = new Float32Array(seq.length * 3)
  seq.forEach((p, f) => {
    for (let c = 0; c < 3; c++) logp[f * 3 + c] = L(c === p ? 0.8 : 0.1)
  })
  return makeUttBatch(schema, { utt: id, logp })
}

function run(source: Highland.Stream<RecordBatch>): Promise<{ hyps: Hypothesis[]; errors: UttError[] }> {
  const o = opts({ lm: 'uniform' })
  const scores = scoresReader(schema, 'test', model, o)
  const stage = decodeStage({ model, graph: decodeGraph(model, estimateLm(model, o, null, ''), o), options: o, scores })
  const hyps: Hypothesis[] = []
  const errors: UttError[] = []
  return new Promise((resolve, reject) => {
    stage(source)
      .errors((e) => {
        if (e instanceof UttError) errors.push(e)
        else reject(e)
      })
      .each((h) => {
        hyps.push(h)
      })
      .done(() => resolve({ hyps, errors }))
  })
}

t.test('decodeStage over an array and a Readable: the bad utterance is an error, the rest decode', async (t) => {
  const empty = makeUttBatch(schema, { utt: 'x-empty', logp: new Float32Array(0) })
  const batches = () => [utt('x-1', [0, 1, 1, 0, 2, 2, 0]), empty, utt('x-2', [2, 2, 2, 1])]
  for (const [name, src] of [
    ['array', () => _(batches())],
    ['Readable', () => _(Readable.from(batches()) as never)],
  ] as const) {
    const { hyps, errors } = await run(src() as Highland.Stream<RecordBatch>)
    t.same(
      hyps.map((h) => [h.utt, h.words.join(' '), h.frames]),
      [
        ['x-1', 'a b', 7],
        ['x-2', 'b a', 4],
      ],
      `${name}: hypotheses`,
    )
    t.same(
      hyps[0]!.segments.map((s) => [s.label, s.start, s.end]),
      [
        ['<sil>', 0, 1],
        ['a', 1, 3],
        ['<sil>', 3, 4],
        ['b', 4, 6],
        ['<sil>', 6, 7],
      ],
    )
    t.same(
      errors.map((e) => e.message),
      ['x-empty: no frames to decode'],
      `${name}: the empty utterance is reported by id`,
    )
  }
})

t.test('float16 log-posteriors (soft-dense with f16 logp) decode like float32', async (t) => {
  const s16 = makeSchema('soft-dense', { widths: { logp: 3 }, types: { logp: 'f16' } })
  const o = opts({ lm: 'uniform' })
  const reader = scoresReader(s16, 'f16', model, o)
  t.equal(reader.f16, true)
  const f32 = utt('h-1', [0, 2, 2, 1, 1, 0]).getChild('logp')!.getChildAt(0)!.getChildAt(0)!.toArray() as Float32Array
  const batch = makeUttBatch(s16, { utt: 'h-1', logp: Uint16Array.from(f32, util.float64ToUint16) })
  const h = decodeBatch(
    { model, graph: decodeGraph(model, estimateLm(model, o, null, ''), o), options: o, scores: reader },
    batch,
  )
  t.same(h.words, ['b', 'a'])
})

t.test('scoresReader refuses scores of another width', async (t) => {
  const wide = makeSchema('soft-dense', { widths: { logp: 4 } })
  t.throws(
    () => scoresReader(wide, 'net.arrow', model, opts()),
    /net\.arrow: logp has 4 classes per frame but the HMM has 3 pdfs/,
  )
})
