import { KtpError } from '../../schemas/errors.js'
import { type CorpusUtt, releaserOf } from './corpus.js'
import { shuffleInPlace } from './shuffle.js'
import { type SoftRow, softTargetsAt, topkTargetsAt } from './soft-targets.js'

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
  /**
   * Top-k soft targets as `sparse` (k ids, their probabilities, the shared probability of the
   * other classes: O(k) per frame) instead of a dense [size, C] `soft` array. Dense soft-target
   * files always give `soft`.
   */
  sparse?: boolean
  /**
   * Reuse the batch arrays: each batch's arrays are overwritten by the next batch, so copy them
   * (or make tensors that copy) before asking for it. Saves allocating (and page-faulting) the
   * batch — 1 MB of dense targets per 256 frames — every time.
   */
  reuse?: boolean
}

/** Sparse soft targets of a batch (see SparseTargets in trainer.ts): row-major, k per row. */
export interface SparseSoft {
  k: number
  ids: Int32Array
  probs: Float32Array
  rest: Float32Array
}

export interface FrameBatch {
  size: number
  inDim: number
  x: Float32Array
  hard?: Int32Array
  soft?: Float32Array
  sparse?: SparseSoft
}

/** Copy frame t of `u` with its context into out[off …], clamping at the utterance edges. */
export function spliceFrameInto(
  u: CorpusUtt,
  t: number,
  left: number,
  right: number,
  out: Float32Array,
  off: number,
): void {
  const D = u.dim
  if (t - left >= 0 && t + right < u.frames) {
    // away from the edges the context is one contiguous run of frames: one copy
    out.set(u.feats.subarray((t - left) * D, (t + right + 1) * D), off)
    return
  }
  for (let o = -left; o <= right; o++) {
    const s = Math.min(u.frames - 1, Math.max(0, t + o))
    out.set(u.feats.subarray(s * D, s * D + D), off)
    off += D
  }
}

/**
 * How a feeder writes soft targets: decided by the first utterance (a file is all dense or all top-k
 * with one k); later utterances must agree.
 */
export function softLayout(row: SoftRow, sparse: boolean | undefined): { sparse: boolean; k: number } {
  return sparse && row.kind === 'topk' ? { sparse: true, k: row.width } : { sparse: false, k: 0 }
}

export function checkSoftLayout(u: CorpusUtt, layout: { sparse: boolean; k: number }): void {
  const row = u.soft!
  if (layout.sparse && (row.kind !== 'topk' || row.width !== layout.k)) {
    throw new KtpError(
      'soft-mismatch',
      `'${u.utt}': soft targets are ${row.kind === 'topk' ? `top-${row.width}` : 'dense'}, earlier utterances top-${layout.k}`,
    )
  }
}

/** Typed arrays of at least n elements: the reused ones when they are large enough, else new ones. */
export class BatchArrays {
  private f32 = new Map<string, Float32Array>()
  private i32 = new Map<string, Int32Array>()
  constructor(private readonly reuse: boolean) {}
  float(name: string, n: number): Float32Array {
    if (!this.reuse) return new Float32Array(n)
    let a = this.f32.get(name)
    if (!a || a.length < n) {
      a = new Float32Array(n)
      this.f32.set(name, a)
    }
    return a.length === n ? a : a.subarray(0, n)
  }
  int(name: string, n: number): Int32Array {
    if (!this.reuse) return new Int32Array(n)
    let a = this.i32.get(name)
    if (!a || a.length < n) {
      a = new Int32Array(n)
      this.i32.set(name, a)
    }
    return a.length === n ? a : a.subarray(0, n)
  }
}

export async function* frameBatches(utts: AsyncIterable<CorpusUtt>, o: FrameBatchOptions): AsyncGenerator<FrameBatch> {
  let buffer: CorpusUtt[] = []
  let frames = 0
  const ctx = o.left + o.right + 1
  const C = o.numClasses
  const T = o.temperature
  let dim = -1
  let layout: { sparse: boolean; k: number } | null = null
  const arrays = new BatchArrays(o.reuse === true)
  // utterances straight from readCorpus go back to it when done with (see chunkBatches)
  const release = releaserOf(utts)

  function* flush(): Generator<FrameBatch> {
    // entry = (utterance index in buffer, frame) in two Uint32 slots
    const idx = new Uint32Array(frames)
    const owner = new Uint32Array(frames)
    let n = 0
    for (let k = 0; k < buffer.length; k++) {
      const f = buffer[k].frames
      for (let t = 0; t < f; t++) {
        owner[n] = k
        idx[n++] = t
      }
    }
    const order = new Uint32Array(frames)
    for (let i = 0; i < frames; i++) order[i] = i
    shuffleInPlace(order, o.rand)
    const inDim = dim * ctx
    const sparse = o.soft && layout!.sparse
    const K = layout?.k ?? 0
    for (let start = 0; start < frames; start += o.batchSize) {
      const size = Math.min(o.batchSize, frames - start)
      const x = arrays.float('x', size * inDim)
      const hard = o.hard ? arrays.int('hard', size) : undefined
      const soft = o.soft && !sparse ? arrays.float('soft', size * C) : undefined
      const sp: SparseSoft | undefined = sparse
        ? {
            k: K,
            ids: arrays.int('ids', size * K),
            probs: arrays.float('probs', size * K),
            rest: arrays.float('rest', size),
          }
        : undefined
      for (let i = 0; i < size; i++) {
        const e = order[start + i]
        const u = buffer[owner[e]]
        const t = idx[e]
        spliceFrameInto(u, t, o.left, o.right, x, i * inDim)
        if (hard) hard[i] = u.labels![t]
        if (sp) sp.rest[i] = topkTargetsAt(u.soft!, t, T, sp.ids, sp.probs, i * K)
        else if (soft) softTargetsAt(u.soft!, t, T, soft, i * C)
      }
      yield { size, inDim, x, hard, soft, sparse: sp }
    }
    // every frame is in a batch (a copy): the utterances' file buffers can serve later reads
    if (release) for (const u of buffer) release(u)
    buffer = []
    frames = 0
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
    if (u.frames === 0) {
      release?.(u)
      continue
    }
    buffer.push(u)
    frames += u.frames
    if (frames >= o.bufferFrames) yield* flush()
  }
  if (frames > 0) yield* flush()
}
