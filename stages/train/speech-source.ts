import * as tf from '@tensorflow/tfjs'
import { KtpError } from '../../schemas/errors.js'
import type { LabelSet } from './corpus.js'
import { epochUtterances } from './corpus-memory.js'
import { chunkBatches } from './chunk-batches.js'
import { frameBatches, type SparseSoft } from './frame-batches.js'
import { epochRandom } from './shuffle.js'
import type { TargetTerm, TrainBatch } from './loss.js'
import type { DataSource } from './trainer.js'
import { tensorFrom } from './tensors.js'

/**
 * The bridge from speech corpora to the trainer: reads features (+ labels, + soft targets) from
 * Arrow files every epoch (streamed in file order, bounded memory), or once into memory to visit
 * the utterances in a new order every epoch (`inMemory`, corpus-memory.ts), batches them as frames
 * (DNN, spliced on the fly) or chunks (recurrent), and hands the trainer tensors with their target
 * terms.
 */
export interface TargetMix {
  /** Weight of the hard-label cross-entropy (T = 1). */
  hard: number
  /** Weight of the soft-target term (T²·KL at `temperature`). */
  soft: number
  temperature: number
}

export interface SpeechSourceConfig {
  feats: string
  labels?: LabelSet
  soft?: string
  numClasses: number
  select?: (utt: string) => boolean
  layout:
    | { kind: 'frames'; batchSize: number; bufferFrames: number; left: number; right: number }
    | { kind: 'chunks'; chunksPerBatch: number; chunkLength: number; bufferChunks: number; delay: number }
  targets: TargetMix
  seed: number
  onSkip?: (utt: string, why: string) => void
  /**
   * Hold the corpus in memory and visit its utterances in a seeded permutation every epoch
   * (corpus-memory.ts; the caller checked it fits). Default false: streamed in file order.
   */
  inMemory?: boolean
  /** Top-k soft targets reach the loss sparsely (default true); false builds dense [rows, C] targets. */
  sparseSoft?: boolean
}

const oneHot = (labels: tf.Tensor, C: number): tf.Tensor => tf.tidy(() => tf.cast(tf.oneHot(labels, C), 'float32'))

/** A tensor of a reused batch array (copied now: the feeder overwrites the array with the next batch). */
const tensorOf = tensorFrom

/** The soft-target term of a batch: sparse (top-k files) or dense, shaped [...lead, ·]. */
function softTerm(
  soft: Float32Array | undefined,
  sparse: SparseSoft | undefined,
  lead: number[],
  C: number,
  mix: TargetMix,
): TargetTerm {
  const { temperature, soft: weight } = mix
  if (sparse) {
    return {
      temperature,
      weight,
      sparse: {
        ids: tensorOf(sparse.ids, [...lead, sparse.k], 'int32'),
        probs: tensorOf(sparse.probs, [...lead, sparse.k]),
        rest: tensorOf(sparse.rest, lead),
      },
    }
  }
  return { temperature, weight, targets: tensorOf(soft!, [...lead, C]) }
}

export function speechSource(cfg: SpeechSourceConfig): DataSource {
  const C = cfg.numClasses
  const needHard = cfg.targets.hard > 0 || cfg.labels !== undefined
  const needSoft = cfg.targets.soft > 0
  if (needSoft && !cfg.soft) throw new KtpError('usage', 'soft-target weight > 0 but no soft-target file given')
  if (cfg.targets.hard > 0 && !cfg.labels) throw new KtpError('usage', 'hard-label weight > 0 but no labels given')
  const utterances = epochUtterances(
    {
      feats: cfg.feats,
      labels: cfg.labels,
      soft: needSoft ? cfg.soft : undefined,
      select: cfg.select,
      needLabels: needHard,
      onSkip: cfg.onSkip,
    },
    cfg.inMemory === true,
  )
  return {
    async *epoch(e: number, skip: number): AsyncGenerator<TrainBatch> {
      // one stream per epoch: first the utterance order (in memory), then the buffer shuffle
      const rand = epochRandom(cfg.seed, e)
      const utts = utterances(rand, e === 0)
      // Top-k files feed the loss sparsely (no dense [rows, C] targets); batch arrays are reused,
      // every one is copied into a tensor before the next batch is asked for.
      const common = {
        rand,
        hard: needHard,
        soft: needSoft,
        temperature: cfg.targets.temperature,
        numClasses: C,
        sparse: cfg.sparseSoft ?? true,
        reuse: true,
      }
      let n = 0
      if (cfg.layout.kind === 'frames') {
        for await (const fb of frameBatches(utts, { ...common, ...cfg.layout })) {
          if (n++ < skip) continue
          yield (() => {
            const labels = fb.hard ? tensorOf(fb.hard, [fb.size], 'int32') : undefined
            const terms: TargetTerm[] = []
            if (cfg.targets.hard > 0)
              terms.push({ targets: oneHot(labels!, C), temperature: 1, weight: cfg.targets.hard })
            if (needSoft) terms.push(softTerm(fb.soft, fb.sparse, [fb.size], C, cfg.targets))
            return { x: tensorOf(fb.x, [fb.size, fb.inDim]), terms, labels, rows: fb.size }
          })()
        }
      } else {
        for await (const cb of chunkBatches(utts, { ...common, ...cfg.layout })) {
          if (n++ < skip) continue
          yield (() => {
            const labels = cb.hard ? tensorOf(cb.hard, [cb.B, cb.L], 'int32') : undefined
            const terms: TargetTerm[] = []
            if (cfg.targets.hard > 0)
              terms.push({ targets: oneHot(labels!, C), temperature: 1, weight: cfg.targets.hard })
            if (needSoft) terms.push(softTerm(cb.soft, cb.sparse, [cb.B, cb.L], C, cfg.targets))
            return {
              x: tensorOf(cb.x, [cb.B, cb.L, cb.dim]),
              terms,
              mask: tensorOf(cb.mask, [cb.B, cb.L]),
              labels,
              rows: cb.B * cb.L,
            }
          })()
        }
      }
    },
  }
}
