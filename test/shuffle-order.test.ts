// The utterance order of training epochs (issue 15): a corpus that fits --shuffle-memory is held in
// memory and visited in a (seed, epoch) permutation, so that the shuffle buffer mixes speakers even
// when the file is grouped by speaker; a corpus over the budget streams in file order, and says so.
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeSchema } from '../schemas/kinds.js'
import { makeUttBatch } from '../schemas/utterance.js'
import { BatchEncoder } from '../pipeline/io/arrow-encoder.js'
import { type LabelSet, readCorpus } from '../stages/train/corpus.js'
import { epochUtterances, loadCorpus, orderNote, planOrder } from '../stages/train/corpus-memory.js'
import { type SpeechSourceConfig, speechSource } from '../stages/train/speech-source.js'
import { epochRandom } from '../stages/train/shuffle.js'
import { writeSoftFiles } from '../bench/soft-read.js'
import { parseOptions } from '../pipeline/io/options.js'
import { trainOptions } from '../stages/train/options.js'
import { fitsOneBuffer } from '../stages/train/session.js'
import { ktp, rng, tmp } from './helpers.js'

const D = tmp('ktp-shuffle-order-')
const DIM = 3
// two "speakers", grouped in the file as the recipes write them: all of a, then all of b
const UTTS = [
  ...Array.from({ length: 10 }, (_, i) => ({ utt: `a-${i}`, frames: 18 + i })),
  ...Array.from({ length: 10 }, (_, i) => ({ utt: `b-${i}`, frames: 20 + i })),
]
const TOTAL = UTTS.reduce((s, u) => s + u.frames, 0)
const speaker = (utt: string) => (utt.startsWith('a') ? 0 : 1)

function writeArrow(path: string, schema: ReturnType<typeof makeSchema>, rows: Record<string, unknown>[]): string {
  const enc = new BatchEncoder(schema, 'file')
  const parts: Uint8Array[] = [...enc.begin()]
  for (const r of rows) parts.push(...enc.encode(makeUttBatch(schema, r as never)))
  parts.push(...enc.finish())
  writeFileSync(path, Buffer.concat(parts))
  return path
}

const r = rng(3)
const FEATS = writeArrow(
  join(D, 'feats.arrow'),
  makeSchema('features', { widths: { feats: DIM }, metadata: { 'ktp.fingerprint': 'fp' } }),
  UTTS.map(({ utt, frames }) => ({ utt, feats: Float32Array.from({ length: frames * DIM }, () => r() * 2 - 1) })),
)
// every frame's label is its speaker: a batch's labels say whose frames it holds
const LABELS: LabelSet = {
  map: new Map(UTTS.map(({ utt, frames }) => [utt, new Int32Array(frames).fill(speaker(utt))])),
  numClasses: 2,
  declaredClasses: 2,
  inventory: null,
}
const LABELS_FILE = writeArrow(
  join(D, 'labels.arrow'),
  makeSchema('labels', { metadata: { 'ktp.num_classes': '2' } }),
  UTTS.map(({ utt }) => ({ utt, labels: LABELS.map.get(utt)! })),
)

async function order(inMemory: boolean, seed: number, epoch: number): Promise<string[]> {
  const utts = epochUtterances({ feats: FEATS, labels: LABELS, needLabels: true }, inMemory)
  const out: string[] = []
  for await (const u of utts(epochRandom(seed, epoch), false)) out.push(u.utt)
  return out
}

const FILE_ORDER = UTTS.map((u) => u.utt)

t.test('in memory: a new utterance order every epoch, the same for the same (seed, epoch)', async (t) => {
  const e0 = await order(true, 5, 0)
  const e1 = await order(true, 5, 1)
  t.same([...e0].sort(), [...FILE_ORDER].sort(), 'every utterance once')
  t.notSame(e0, FILE_ORDER, 'epoch 1 is not in file order')
  t.notSame(e1, e0, 'epoch 2 in another order than epoch 1')
  t.same(await order(true, 5, 1), e1, 'epoch 2 again (another load, as on --resume): the same order')
  t.notSame(await order(true, 6, 0), e0, 'another seed, another order')
  // streamed: the file's order every epoch, as before
  t.same(await order(false, 5, 0), FILE_ORDER)
  t.same(await order(false, 5, 1), FILE_ORDER)
})

t.test('the in-memory corpus holds exactly what streaming reads, top-k f16 soft targets as stored', async (t) => {
  const lengths = UTTS.map((u) => u.frames)
  const [[, soft]] = writeSoftFiles(D, lengths, 7, [{ storage: 'top3-f16', topK: 3, dtype: 'f16' }])
  // writeSoftFiles names its utterances itself: features with those ids
  const { writeRandomFeatures } = await import('../bench/common.js')
  const feats = join(D, 'feats-soft.arrow')
  writeRandomFeatures(feats, lengths, DIM, { seed: 2 })
  const kept = await loadCorpus({ feats, soft })
  const streamed: { utt: string; feats: number[]; logp: number[]; ids: number[]; tail: number[] }[] = []
  for await (const u of readCorpus({ feats, soft }))
    streamed.push({
      utt: u.utt,
      feats: [...u.feats],
      logp: [...u.soft!.logp],
      ids: [...u.soft!.ids!],
      tail: [...u.soft!.tail!],
    })
  t.same(
    kept.map((u) => ({
      utt: u.utt,
      feats: [...u.feats],
      logp: [...u.soft!.logp],
      ids: [...u.soft!.ids!],
      tail: [...u.soft!.tail!],
    })),
    streamed,
  )
  t.ok(
    kept.every((u) => u.soft!.logp instanceof Uint16Array && u.soft!.f16 && u.soft!.kind === 'topk'),
    'f16 top-k rows stay f16 top-k',
  )
  // the plan's estimate is what the arrays take
  const held = kept.reduce((s, u) => s + u.feats.byteLength + u.soft!.logp.byteLength + u.soft!.ids!.byteLength, 0)
  const tails = kept.reduce((s, u) => s + u.soft!.tail!.byteLength, 0)
  const plan = await planOrder({ feats, soft, labels: false, frames: TOTAL, budgetMB: 1 })
  t.equal(plan.bytes, held + tails, `estimate ${plan.bytes} B = bytes held`)
  t.ok(plan.inMemory)
})

/** A source over the two-speaker corpus: frames, a 100-frame buffer, hard labels; `cfg` overrides. */
const twoSpeakerSource = (cfg: Partial<SpeechSourceConfig>) =>
  speechSource({
    feats: FEATS,
    labels: LABELS,
    numClasses: 2,
    layout: { kind: 'frames', batchSize: 16, bufferFrames: 100, left: 1, right: 1 },
    targets: { hard: 1, soft: 0, temperature: 1 },
    seed: 1,
    ...cfg,
  })

/** Frames of speaker a and of speaker b (their labels, padding left out) in each batch of one epoch. */
async function batchSpeakers(cfg: Partial<SpeechSourceConfig>, epoch: number): Promise<[number, number][]> {
  const src = twoSpeakerSource(cfg)
  const out: [number, number][] = []
  for await (const b of src.epoch(epoch, 0)) {
    const labels = b.labels!.dataSync()
    const mask = b.mask?.dataSync()
    const n: [number, number] = [0, 0]
    for (let i = 0; i < labels.length; i++) if (!mask || mask[i] === 1) n[labels[i]]++
    out.push(n)
    b.x.dispose()
    b.labels!.dispose()
    for (const term of b.terms) term.targets?.dispose()
    b.mask?.dispose()
  }
  return out
}

t.test('a buffer smaller than the corpus: the end of an epoch mixes both speakers only in memory', async (t) => {
  const chunks = { kind: 'chunks', chunksPerBatch: 4, chunkLength: 8, bufferChunks: 12, delay: 0 } as const
  const sum = (bs: [number, number][]) => bs.reduce((s, n) => [s[0] + n[0], s[1] + n[1]], [0, 0])
  // the last quarter of an epoch's batches: within its last buffers (each under a tenth of the corpus)
  const tail = (bs: [number, number][]) => bs.slice(Math.floor((bs.length * 3) / 4))
  for (const [name, layout] of [
    ['frames (100-frame buffer)', undefined],
    ['chunks (12-chunk buffer)', chunks],
  ] as const) {
    for (const epoch of [0, 1, 2]) {
      const cfg = layout ? { layout } : {}
      const what = `${name} epoch ${epoch + 1}`
      const streamed = await batchSpeakers({ ...cfg, inMemory: false }, epoch)
      const kept = await batchSpeakers({ ...cfg, inMemory: true }, epoch)
      t.same(sum(kept), sum(streamed), `${what}: the same frames either way`)
      const [sa, sb] = sum(tail(streamed))
      const [ka, kb] = sum(tail(kept))
      // streamed, an a chunk left over from a buffer can travel on (chunk-batches keeps remainders)
      t.ok(sa <= 0.05 * (sa + sb), `${what}, file order: the last batches are b's (a: ${sa}, b: ${sb} frames)`)
      t.ok(
        ka >= 0.1 * (ka + kb) && kb >= 0.1 * (ka + kb),
        `${what}, in memory: the last batches hold a and b (a: ${ka}, b: ${kb} frames)`,
      )
      const mixed = tail(kept).filter(([a, b]) => a > 0 && b > 0).length
      t.ok(mixed > 0, `${what}: ${mixed} of the last ${tail(kept).length} batches mix both`)
    }
  }
})

t.test('in memory, --resume is exact: epoch(e, skip) of a fresh source gives the rest of epoch e', async (t) => {
  const src = () => twoSpeakerSource({ seed: 9, inMemory: true })
  const batches = async (e: number, skip: number) => {
    const out: number[][] = []
    for await (const b of src().epoch(e, skip)) {
      out.push([...b.x.dataSync()])
      b.x.dispose()
      b.labels?.dispose()
      for (const term of b.terms) term.targets?.dispose()
    }
    return out
  }
  const whole = await batches(2, 0)
  const resumed = await batches(2, 11)
  t.equal(resumed.length, whole.length - 11, `${whole.length} batches, 11 skipped`)
  t.same(resumed, whole.slice(11), 'the remaining batches, value for value')
  t.notSame(await batches(1, 11), resumed, 'another epoch, other batches')
})

t.test('over the budget (or from a pipe): file order, and a note that says how to change it', async (t) => {
  const fits = await planOrder({ feats: FEATS, labels: true, frames: TOTAL, budgetMB: 1 })
  t.same(fits, { inMemory: true, bytes: TOTAL * (DIM * 4 + 4), budgetMB: 1 })
  const over = await planOrder({ feats: FEATS, labels: true, frames: TOTAL, budgetMB: 0.001 })
  t.same(over, { inMemory: false, bytes: TOTAL * (DIM * 4 + 4), budgetMB: 0.001, why: 'budget' })
  const needMB = ((TOTAL * (DIM * 4 + 4)) / 1024 / 1024).toPrecision(2) // 470 frames × 16 B
  t.equal(
    orderNote(over, 'train'),
    `ktp train: NOTE the training corpus needs ${needMB} MB in memory, more than --shuffle-memory 0.001 MB: ` +
      'utterances are read in the order of the file every epoch, shuffled only within --buffer-frames/--buffer-chunks; ' +
      'give --shuffle-memory 1 (or more) to shuffle the utterance order every epoch',
  )
  const pipe = await planOrder({ feats: '-', labels: true, frames: TOTAL, budgetMB: 1 })
  t.same([pipe.inMemory, pipe.why], [false, 'pipe'])
  t.match(orderNote(pipe, 'train'), /pipe \('-'\): utterances are read in the order of the file/)

  // the real command, once under the budget and once over it
  const args = (out: string, extra: string[]) => [
    'train-teacher',
    '--feats',
    FEATS,
    '--labels',
    LABELS_FILE,
    '--model',
    '{"type":"dnn","hidden":[8],"activation":"sigmoid"}',
    '--context',
    '1',
    '--max-epochs',
    '1',
    '--min-epochs',
    '1',
    '--heldout-fraction',
    '0.2',
    '--buffer-frames',
    '100',
    '-o',
    join(D, out),
    ...extra,
  ]
  const inMem = ktp(args('in-memory', []))
  t.equal(inMem.code, 0, inMem.stderr)
  t.match(
    inMem.stderr,
    /ktp train: training corpus in memory \([\d.]+ MB of --shuffle-memory 2048 MB\): utterance order shuffled every epoch/,
  )
  t.notMatch(inMem.stderr, /order of the file/)
  const streamed = ktp(args('streamed', ['--shuffle-memory', '0.001']))
  t.equal(streamed.code, 0, streamed.stderr)
  const notes = streamed.stderr.split('\n').filter((l) => l.includes('--shuffle-memory'))
  t.equal(notes.length, 1, 'said once')
  t.match(notes[0], /NOTE the training corpus needs .* more than --shuffle-memory .*order of the file every epoch/)
  // the budget is validated with the other options (zod), before any file is read
  t.throws(() => parseOptions(trainOptions, { feats: 'f', labels: 'l', shuffleMemory: -1 }), /--shuffle-memory: .*>=0/)
  t.equal(parseOptions(trainOptions, { feats: 'f', labels: 'l' }).shuffleMemory, 2048, 'default 2048 MB')
})

t.test(
  'a corpus smaller than one shuffle buffer streams in file order: that buffer already mixes it all',
  async (t) => {
    const frames = { kind: 'frames', batchSize: 4, bufferFrames: 100, left: 0, right: 0 } as const
    t.equal(fitsOneBuffer([40, 59], frames), true, '99 frames < 100')
    t.equal(fitsOneBuffer([40, 60], frames), false, '100 frames flush the buffer before the end')
    const chunks = { kind: 'chunks', chunksPerBatch: 2, chunkLength: 20, bufferChunks: 5, delay: 5 } as const
    // ceil((30 + 5) / 20) = 2 and ceil((50 + 5) / 20) = 3 chunks: 5, not below 5
    t.equal(fitsOneBuffer([30, 50], chunks), false)
    t.equal(fitsOneBuffer([30, 30], chunks), true, '2 + 2 chunks < 5')
    const plan = await planOrder({ feats: '-', frames: 10, labels: true, budgetMB: 2048, oneBuffer: true })
    t.same(plan, { inMemory: false, bytes: 0, budgetMB: 2048, why: 'one-buffer' })
    t.match(orderNote(plan, 'train'), /fits one shuffle buffer/)
  },
)
