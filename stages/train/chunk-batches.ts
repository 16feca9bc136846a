import { KtpError } from '../../schemas/errors.js'
import { type CorpusUtt, releaserOf } from './corpus.js'
import { BatchArrays, type SparseSoft, checkSoftLayout, softLayout } from './frame-batches.js'
import { shuffleInPlace } from './shuffle.js'
import { softTargetsAt, topkTargetsAt } from './soft-targets.js'

/**
 * Chunked sequences for recurrent students (docs/ARCHITECTURE.md §5): every utterance is cut into chunks of
 * `chunkLength` frames, chunks from many utterances are shuffled within a buffer and stacked
 * `chunksPerBatch` to a batch ([B, L, D]); the last chunk of an utterance is padded and masked.
 * With a target delay d the network sees frame t when it must name the label of frame t − d; the
 * input is extended by d copies of the last frame so the final labels are still predicted.
 */
export interface ChunkBatchOptions {
  chunksPerBatch: number
  chunkLength: number
  bufferChunks: number
  delay: number
  rand: () => number
  hard: boolean
  soft: boolean
  temperature: number
  numClasses: number
  /** Top-k soft targets as `sparse` instead of dense `soft` (see FrameBatchOptions). */
  sparse?: boolean
  /** Reuse the batch arrays across batches (see FrameBatchOptions). */
  reuse?: boolean
}

export interface ChunkBatch {
  B: number
  L: number
  dim: number
  x: Float32Array
  /** 1 where a position has a target, 0 for padding and delay positions. */
  mask: Float32Array
  hard?: Int32Array
  /** Dense targets [B, L, C]; positions without a target are all 0. */
  soft?: Float32Array
  /** Sparse targets ([B, L, k] ids and probs, [B, L] rest); positions without a target are all 0. */
  sparse?: SparseSoft
  /** Number of positions with a target (mask sum). */
  frames: number
}

interface Chunk {
  u: CorpusUtt
  start: number
}

export async function* chunkBatches(utts: AsyncIterable<CorpusUtt>, o: ChunkBatchOptions): AsyncGenerator<ChunkBatch> {
  const L = o.chunkLength
  const C = o.numClasses
  const T = o.temperature
  let buffer: Chunk[] = []
  let dim = -1
  let layout: { sparse: boolean; k: number } | null = null
  const arrays = new BatchArrays(o.reuse === true)
  // Utterances straight from readCorpus go back to it once their last chunk is in a batch (batches
  // hold copies): their file buffers then serve later reads instead of fresh ones (body-pool.ts).
  const release = releaserOf(utts)
  const chunksLeft = new Map<CorpusUtt, number>()

  function* flush(final: boolean): Generator<ChunkBatch> {
    const order = new Uint32Array(buffer.length)
    for (let i = 0; i < order.length; i++) order[i] = i
    shuffleInPlace(order, o.rand)
    const sparse = o.soft && layout!.sparse
    const K = layout?.k ?? 0
    for (let s = 0; s < order.length; s += o.chunksPerBatch) {
      const B = Math.min(o.chunksPerBatch, order.length - s)
      if (B < o.chunksPerBatch && !final) {
        // keep the remainder for the next buffer so every batch but the very last is full
        buffer = Array.from(order.subarray(s), (i) => buffer[i])
        return
      }
      const x = arrays.float('x', B * L * dim)
      const mask = arrays.float('mask', B * L)
      const hard = o.hard ? arrays.int('hard', B * L) : undefined
      const soft = o.soft && !sparse ? arrays.float('soft', B * L * C) : undefined
      const sp: SparseSoft | undefined = sparse
        ? {
            k: K,
            ids: arrays.int('ids', B * L * K),
            probs: arrays.float('probs', B * L * K),
            rest: arrays.float('rest', B * L),
          }
        : undefined
      // Every position is written below, a position without a target with zeros (as in a fresh
      // batch): reused arrays need no clearing pass over the whole batch first.
      const clear = (at: number) => {
        mask[at] = 0
        if (hard) hard[at] = 0
        if (sp) {
          sp.ids.fill(0, at * K, (at + 1) * K)
          sp.probs.fill(0, at * K, (at + 1) * K)
          sp.rest[at] = 0
        } else soft?.fill(0, at * C, (at + 1) * C)
      }
      let frames = 0
      for (let b = 0; b < B; b++) {
        const { u, start } = buffer[order[s + b]]
        const ext = u.frames + o.delay
        const span = Math.min(L, ext - start) // positions with input
        const real = Math.max(0, Math.min(span, u.frames - start)) // of which real frames (one run)
        const row = b * L
        if (real > 0) x.set(u.feats.subarray(start * dim, (start + real) * dim), row * dim)
        if (real < span) {
          // delay positions past the end repeat the last frame
          const last = u.feats.subarray((u.frames - 1) * dim, u.frames * dim)
          for (let p = real; p < span; p++) x.set(last, (row + p) * dim)
        }
        if (span < L) x.fill(0, (row + span) * dim, (row + L) * dim)
        for (let p = 0; p < L; p++) {
          const at = row + p
          const target = start + p - o.delay
          if (p >= span || target < 0 || target >= u.frames) {
            clear(at)
            continue
          }
          mask[at] = 1
          frames++
          if (hard) hard[at] = u.labels![target]
          if (sp) sp.rest[at] = topkTargetsAt(u.soft!, target, T, sp.ids, sp.probs, at * K)
          else if (soft) softTargetsAt(u.soft!, target, T, soft, at * C)
        }
        if (release) {
          const left = chunksLeft.get(u)! - 1
          if (left > 0) chunksLeft.set(u, left)
          else {
            chunksLeft.delete(u)
            release(u)
          }
        }
      }
      yield { B, L, dim, x, mask, hard, soft, sparse: sp, frames }
    }
    buffer = []
  }

  for await (const u of utts) {
    if (dim < 0) dim = u.dim
    else if (u.dim !== dim) throw new KtpError('dim-mismatch', `'${u.utt}' has dim ${u.dim}, earlier utterances ${dim}`)
    if (o.hard && !u.labels) throw new KtpError('no-labels', `'${u.utt}' has no labels`)
    if (o.soft) {
      if (!u.soft) throw new KtpError('no-soft', `'${u.utt}' has no soft targets`)
      if (!layout) layout = softLayout(u.soft, o.sparse)
      else checkSoftLayout(u, layout)
    }
    let chunks = 0
    for (let start = 0; start < u.frames + o.delay; start += L, chunks++) buffer.push({ u, start })
    if (release) chunksLeft.set(u, chunks)
    if (buffer.length >= o.bufferChunks) yield* flush(false)
  }
  if (buffer.length > 0) yield* flush(true)
}
