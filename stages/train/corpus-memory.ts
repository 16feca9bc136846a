import { FixedSizeList, Float, Int, List, type Schema } from 'apache-arrow'
import { openArrow } from '../../pipeline/io/arrow-source.js'
import { type CorpusOptions, type CorpusUtt, readCorpus } from './corpus.js'
import { shuffleInPlace } from './shuffle.js'
import type { SoftRow } from './soft-targets.js'

/**
 * The utterance order of a training epoch. A shuffle buffer (frame-batches.ts, chunk-batches.ts)
 * only mixes what it holds; the recipes write features grouped by speaker, so a corpus larger than
 * one buffer streamed in file order ends every epoch with batches of one speaker, in the same order
 * every epoch. When the training corpus fits `--shuffle-memory`, it is read once into memory and
 * every epoch visits its utterances in a permutation that depends only on (seed, epoch), so that
 * --resume replays an interrupted epoch exactly; the buffer shuffle then mixes frames (or chunks) of
 * all speakers. Otherwise (or from a pipe) utterances stream in the file's order, as before.
 */
export interface OrderPlan {
  /** true: the corpus is held in memory and its utterance order is shuffled every epoch. */
  inMemory: boolean
  /** Estimated bytes of the training corpus in memory (features, soft targets as stored, labels). */
  bytes: number
  /** --shuffle-memory, in MB as given. */
  budgetMB: number
  /** Why the order is the file's, when it is. */
  why?: 'pipe' | 'budget' | 'one-buffer'
}

const MB = 1024 * 1024

/** Bytes of one element of an Arrow numeric type (0 for anything else: strings, …). */
function elemBytes(t: unknown): number {
  if (t instanceof Float) return [2, 4, 8][t.precision] ?? 0
  if (t instanceof Int) return t.bitWidth / 8
  return 0
}

/**
 * Bytes one frame takes in memory over a file's per-frame columns: matrices
 * (List<FixedSizeList<T>[w]>, w elements a frame) and vectors (List<T>, one). Per-utterance
 * columns (the id) are left out: they are small next to the frames.
 */
export function frameBytes(schema: Schema): number {
  let n = 0
  for (const f of schema.fields) {
    if (!(f.type instanceof List)) continue
    const child = f.type.children[0].type
    n += child instanceof FixedSizeList ? child.listSize * elemBytes(child.children[0].type) : elemBytes(child)
  }
  return n
}

async function schemaOf(path: string, accept: string[]): Promise<Schema> {
  const src = await openArrow(path, accept)
  await src.close()
  return src.schema
}

/**
 * Whether the training corpus of `frames` frames fits `budgetMB`: features and soft targets as
 * their files store them (f16 stays f16, top-k stays top-k), and 4 bytes a frame of labels.
 */
export async function planOrder(o: {
  feats: string
  soft?: string
  labels: boolean
  frames: number
  budgetMB: number
  /**
   * The corpus fills less than one shuffle buffer: the buffer's shuffle is then already global
   * and fresh every epoch, so the corpus streams in file order (nothing held, and the batches are
   * those of a plain buffer shuffle).
   */
  oneBuffer?: boolean
}): Promise<OrderPlan> {
  const budgetMB = o.budgetMB
  if (o.oneBuffer) return { inMemory: false, bytes: 0, budgetMB, why: 'one-buffer' }
  if (o.feats === '-' || o.soft === '-') return { inMemory: false, bytes: 0, budgetMB, why: 'pipe' }
  let perFrame = frameBytes(await schemaOf(o.feats, ['features']))
  if (o.soft) perFrame += frameBytes(await schemaOf(o.soft, ['soft-dense', 'soft-topk']))
  if (o.labels) perFrame += 4
  const bytes = o.frames * perFrame
  return bytes <= budgetMB * MB
    ? { inMemory: true, bytes, budgetMB }
    : { inMemory: false, bytes, budgetMB, why: 'budget' }
}

/** The line that tells the user which order training reads utterances in, and how to change it. */
export function orderNote(plan: OrderPlan, stage: string): string {
  const mb = (b: number) => (b >= 10 * MB ? (b / MB).toFixed(0) : (b / MB).toPrecision(2))
  if (plan.inMemory)
    return `ktp ${stage}: training corpus in memory (${mb(plan.bytes)} MB of --shuffle-memory ${plan.budgetMB} MB): utterance order shuffled every epoch`
  const order =
    'utterances are read in the order of the file every epoch, shuffled only within --buffer-frames/--buffer-chunks'
  if (plan.why === 'one-buffer')
    return `ktp ${stage}: the training corpus fits one shuffle buffer: every epoch shuffles all its frames (chunks) afresh`
  if (plan.why === 'pipe') return `ktp ${stage}: NOTE training from a pipe ('-'): ${order}`
  return (
    `ktp ${stage}: NOTE the training corpus needs ${mb(plan.bytes)} MB in memory, more than --shuffle-memory ${plan.budgetMB} MB: ` +
    `${order}; give --shuffle-memory ${Math.ceil(plan.bytes / MB)} (or more) to shuffle the utterance order every epoch`
  )
}

/** A copy of the soft row that owns its arrays (no view into a file block). */
function ownSoft(s: SoftRow): SoftRow {
  return { ...s, logp: s.logp.slice(), ids: s.ids?.slice(), tail: s.tail?.slice() }
}

/**
 * Every utterance of the corpus, each in arrays of its own: a copy, so that neither a reader that
 * reuses its block buffers nor a large block stays behind a small view. Labels are the LabelSet's
 * arrays, already in memory.
 */
export async function loadCorpus(opts: CorpusOptions): Promise<CorpusUtt[]> {
  const out: CorpusUtt[] = []
  for await (const u of readCorpus(opts))
    out.push({ ...u, feats: u.feats.slice(), soft: u.soft ? ownSoft(u.soft) : undefined })
  return out
}

/** The visiting order of n utterances in one epoch: a seeded Fisher–Yates permutation drawn from `rand`. */
export function utteranceOrder(n: number, rand: () => number): Uint32Array {
  const order = new Uint32Array(n)
  for (let i = 0; i < n; i++) order[i] = i
  shuffleInPlace(order, rand)
  return order
}

/**
 * The utterances of the training corpus for one epoch, given the epoch's random stream: from
 * memory in a permutation drawn first from `rand` (loaded on the first call, kept for the next),
 * or streamed in file order. Either way `rand` then goes on to the batcher's buffer shuffle, so
 * an epoch depends only on (seed, epoch). Skipped utterances (corpus.onSkip) are reported by the
 * one load, or by the streamed passes that ask for it (`reportSkips`: the first epoch's).
 */
export function epochUtterances(
  corpus: CorpusOptions,
  inMemory: boolean,
): (rand: () => number, reportSkips: boolean) => AsyncIterable<CorpusUtt> {
  let loaded: Promise<CorpusUtt[]> | null = null
  return (rand, reportSkips) => {
    if (!inMemory) return readCorpus({ ...corpus, onSkip: reportSkips ? corpus.onSkip : undefined })
    loaded ??= loadCorpus(corpus)
    const all = loaded
    return (async function* () {
      const utts = await all
      for (const i of utteranceOrder(utts.length, rand)) yield utts[i]
    })()
  }
}
