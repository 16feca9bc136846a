import { KtpError } from '../../schemas/errors.js'
import { CorpusUtt } from './corpus.js'
import { shuffleInPlace } from './shuffle.js'
import { softTargetsAt } from './soft-targets.js'

/**
 * Frame-shuffled mini-batches for frame classifiers (DNN teachers), Kaldi nnet1 style: utterances
 * fill a buffer of `bufferFrames` frames, the buffer's frames are shuffled and cut into batches.
 * Memory is bounded by the buffer, not the corpus. Context splicing (±left/right frames, edge
 * frames repeated as Kaldi's splice-feats) is done here, on the fly, so 11× spliced features are
 * never materialised. The last batch of each buffer may be smaller; losses average per frame, so
 * that only changes its weight in proportion to its frames.
 */
export interface FrameBatchOptions {
  batchSize: number
  bufferFrames: number
  left: number
  right: number
  rand: () => number
  hard: boolean
  soft: boolean
  temperature: number
  numClasses: number
}

export interface FrameBatch {
  size: number
  inDim: number
  x: Float32Array
  hard?: Int32Array
  soft?: Float32Array
}

/** Copy frame t of `u` with its context into out[off …], clamping at the utterance edges. */
export function spliceFrameInto(u: CorpusUtt, t: number, left: number, right: number, out: Float32Array, off: number): void {
  const D = u.dim
  for (let o = -left; o <= right; o++) {
    const s = Math.min(u.frames - 1, Math.max(0, t + o))
    out.set(u.feats.subarray(s * D, s * D + D), off)
    off += D
  }
}

export async function* frameBatches(utts: AsyncIterable<CorpusUtt>, o: FrameBatchOptions): AsyncGenerator<FrameBatch> {
  let buffer: CorpusUtt[] = []
  let frames = 0
  const ctx = o.left + o.right + 1
  let dim = -1

  function* flush(): Generator<FrameBatch> {
    // entry = (utterance index in buffer, frame) packed in two Uint32 slots
    const idx = new Uint32Array(frames)
    const owner = new Uint32Array(frames)
    let n = 0
    buffer.forEach((u, k) => {
      for (let t = 0; t < u.frames; t++) (owner[n] = k), (idx[n++] = t)
    })
    const order = new Uint32Array(frames)
    for (let i = 0; i < frames; i++) order[i] = i
    shuffleInPlace(order, o.rand)
    const inDim = dim * ctx
    for (let start = 0; start < frames; start += o.batchSize) {
      const size = Math.min(o.batchSize, frames - start)
      const x = new Float32Array(size * inDim)
      const hard = o.hard ? new Int32Array(size) : undefined
      const soft = o.soft ? new Float32Array(size * o.numClasses) : undefined
      for (let i = 0; i < size; i++) {
        const e = order[start + i]
        const u = buffer[owner[e]]
        const t = idx[e]
        spliceFrameInto(u, t, o.left, o.right, x, i * inDim)
        if (hard) hard[i] = u.labels![t]
        if (soft) softTargetsAt(u.soft!, t, o.temperature, soft, i * o.numClasses)
      }
      yield { size, inDim, x, hard, soft }
    }
    buffer = []
    frames = 0
  }

  for await (const u of utts) {
    if (dim < 0) dim = u.dim
    else if (u.dim !== dim) throw new KtpError('dim-mismatch', `'${u.utt}' has dim ${u.dim}, earlier utterances ${dim}`)
    if (o.hard && !u.labels) throw new KtpError('no-labels', `'${u.utt}' has no labels`)
    if (o.soft && !u.soft) throw new KtpError('no-soft', `'${u.utt}' has no soft targets`)
    if (u.frames === 0) continue
    buffer.push(u)
    frames += u.frames
    if (frames >= o.bufferFrames) yield* flush()
  }
  if (frames > 0) yield* flush()
}
