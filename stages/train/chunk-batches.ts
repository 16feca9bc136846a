import { KtpError } from '../../schemas/errors.js'
import { CorpusUtt } from './corpus.js'
import { shuffleInPlace } from './shuffle.js'
import { softTargetsAt } from './soft-targets.js'

/**
 * Chunked sequences for recurrent students (DESIGN.md §5): every utterance is cut into chunks of
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
}

export interface ChunkBatch {
  B: number
  L: number
  dim: number
  x: Float32Array
  /** 1 where a position has a target, 0 for padding and delay positions. */
  mask: Float32Array
  hard?: Int32Array
  soft?: Float32Array
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
  let buffer: Chunk[] = []
  let dim = -1

  function* flush(final: boolean): Generator<ChunkBatch> {
    const order = new Uint32Array(buffer.length)
    for (let i = 0; i < order.length; i++) order[i] = i
    shuffleInPlace(order, o.rand)
    for (let s = 0; s < order.length; s += o.chunksPerBatch) {
      const B = Math.min(o.chunksPerBatch, order.length - s)
      if (B < o.chunksPerBatch && !final) {
        // keep the remainder for the next buffer so every batch but the very last is full
        buffer = Array.from(order.subarray(s), (i) => buffer[i])
        return
      }
      const x = new Float32Array(B * L * dim)
      const mask = new Float32Array(B * L)
      const hard = o.hard ? new Int32Array(B * L) : undefined
      const soft = o.soft ? new Float32Array(B * L * C) : undefined
      let frames = 0
      for (let b = 0; b < B; b++) {
        const { u, start } = buffer[order[s + b]]
        const ext = u.frames + o.delay
        for (let p = 0; p < L; p++) {
          const g = start + p
          if (g >= ext) break
          const src = Math.min(g, u.frames - 1)
          x.set(u.feats.subarray(src * dim, src * dim + dim), (b * L + p) * dim)
          const target = g - o.delay
          if (target < 0 || target >= u.frames) continue
          mask[b * L + p] = 1
          frames++
          if (hard) hard[b * L + p] = u.labels![target]
          if (soft) softTargetsAt(u.soft!, target, o.temperature, soft, (b * L + p) * C)
        }
      }
      yield { B, L, dim, x, mask, hard, soft, frames }
    }
    buffer = []
  }

  for await (const u of utts) {
    if (dim < 0) dim = u.dim
    else if (u.dim !== dim) throw new KtpError('dim-mismatch', `'${u.utt}' has dim ${u.dim}, earlier utterances ${dim}`)
    if (o.hard && !u.labels) throw new KtpError('no-labels', `'${u.utt}' has no labels`)
    if (o.soft && !u.soft) throw new KtpError('no-soft', `'${u.utt}' has no soft targets`)
    for (let start = 0; start < u.frames + o.delay; start += L) buffer.push({ u, start })
    if (buffer.length >= o.bufferChunks) yield* flush(false)
  }
  if (buffer.length > 0) yield* flush(true)
}
