import { readFileSync } from 'node:fs'
import type { RecordBatch } from 'apache-arrow'
import { KtpError } from '../../schemas/errors.js'
import { getMatrix, getVector, uttId } from '../../schemas/utterance.js'
import { openArrow } from '../io/arrow-source.js'
import { puller } from '../io/pull.js'
import { writeFileAtomic } from '../io/atomic-file.js'
import { decodeOptions, decodeBatch, decodeGraph, estimateLm } from '../../stages/decode/stage.js'
import { readHmm } from '../../stages/hmm/model.js'
import { scoresReader } from '../../stages/hmm/soft-scores.js'
import { formatTrn, parseKaldiText, parseSentences } from '../../stages/formats/transcripts.js'
import { parseTrn, scoreTrn } from '../../stages/scoring/index.js'
import { loadMap } from '../../stages/score/stage.js'
import { fromF16 } from '../../schemas/float16.js'

/**
 * Evaluation of one trained system inside a recipe: decode the dev set over a grid of acoustic
 * scales and insertion penalties, keep the best (dev, never test: docs/ARCHITECTURE.md §6), decode the test
 * set with it and score (sclite rules); also the test frame accuracy against forced-aligned labels.
 * It reads `ktp infer --top-k 0 --dtype f32` outputs, so it costs no network evaluation.
 */
export interface EvalInput {
  hmm: string
  lmText: string
  devScores: string
  devText: string
  testScores: string
  testText: string
  testLabels: string
  acousticScales: number[]
  insertionPenalties: number[]
  lm: 'bigram' | 'unigram' | 'uniform'
  /** Fold labels before scoring (TIMIT's 39 phones). */
  map?: 'timit39'
  out: string
}

export interface EvalResult {
  wer: number
  dev_wer: number
  frame_accuracy: number
  acoustic_scale: number
  insertion_penalty: number
  test_words: number
  test_utterances: number
}

async function readAll(path: string): Promise<RecordBatch[]> {
  const src = await openArrow(path, ['soft-dense'])
  const next = puller(src.stream())
  const out: RecordBatch[] = []
  for (let b = await next(); b; b = await next()) out.push(b)
  return out
}

function refTrn(textPath: string): string {
  const text = parseKaldiText(readFileSync(textPath, 'utf8'), textPath)
  return [...text].map(([u, w]) => formatTrn(u, w)).join('')
}

function decodeSet(
  input: EvalInput,
  batches: RecordBatch[],
  schemaSource: string,
  acousticScale: number,
  insertionPenalty: number,
): string {
  const model = readHmm(input.hmm)
  const o = decodeOptions.parse({ lm: input.lm, acousticScale, insertionPenalty })
  const lm = estimateLm(model, o, parseSentences(readFileSync(input.lmText, 'utf8')), input.lmText)
  const graph = decodeGraph(model, lm, o)
  if (batches.length === 0) throw new KtpError('empty', `${schemaSource}: no utterances to decode`)
  const scores = scoresReader(batches[0].schema, schemaSource, model, o)
  return batches
    .map((b) => {
      const h = decodeBatch({ model, graph, options: o, scores }, b)
      return formatTrn(h.utt, h.words)
    })
    .join('')
}

function wer(
  refText: string,
  hyp: string,
  source: string,
  map?: 'timit39',
): { err: number; words: number; utts: number } {
  const r = scoreTrn(parseTrn(refText, {}, 'ref'), parseTrn(hyp, {}, source), { map: loadMap(map) })
  const o = r.overall
  return { err: o.sub + o.del + o.ins, words: o.words, utts: o.sentences }
}

/** Frame accuracy (%) of argmax log-posteriors against labels, joined by utterance id. */
export async function frameAccuracy(scores: RecordBatch[], labelsPath: string): Promise<number> {
  const labels = new Map<string, Int32Array>()
  const src = await openArrow(labelsPath, ['labels'])
  const next = puller(src.stream())
  for (let b = await next(); b; b = await next()) labels.set(uttId(b), getVector<Int32Array>(b, 'labels'))
  let hit = 0
  let n = 0
  for (const b of scores) {
    const l = labels.get(uttId(b))
    if (!l) continue
    const m = getMatrix<Float32Array | Uint16Array>(b, 'logp')
    const f16 = m.data instanceof Uint16Array
    for (let t = 0; t < Math.min(m.frames, l.length); t++) {
      let best = 0
      let bv = -Infinity
      for (let c = 0; c < m.width; c++) {
        const raw = m.data[t * m.width + c]
        const v = f16 ? fromF16(raw) : raw
        if (v > bv) {
          bv = v
          best = c
        }
      }
      if (best === l[t]) hit++
      n++
    }
  }
  return n ? (100 * hit) / n : NaN
}

export async function tuneAndEvaluate(input: EvalInput): Promise<EvalResult> {
  const dev = await readAll(input.devScores)
  const test = await readAll(input.testScores)
  const devRef = refTrn(input.devText)
  let best: { wer: number; as: number; ip: number } | null = null
  for (const as of input.acousticScales) {
    for (const ip of input.insertionPenalties) {
      const w = wer(devRef, decodeSet(input, dev, input.devScores, as, ip), input.devScores, input.map)
      const rate = (100 * w.err) / Math.max(1, w.words)
      if (!best || rate < best.wer) best = { wer: rate, as, ip }
    }
  }
  const hyp = decodeSet(input, test, input.testScores, best!.as, best!.ip)
  writeFileAtomic(`${input.out}.test.trn`, hyp)
  const t = wer(refTrn(input.testText), hyp, input.testScores, input.map)
  const result: EvalResult = {
    wer: (100 * t.err) / Math.max(1, t.words),
    dev_wer: best!.wer,
    frame_accuracy: await frameAccuracy(test, input.testLabels),
    acoustic_scale: best!.as,
    insertion_penalty: best!.ip,
    test_words: t.words,
    test_utterances: t.utts,
  }
  writeFileAtomic(`${input.out}.json`, `${JSON.stringify(result, null, 1)}\n`)
  return result
}
