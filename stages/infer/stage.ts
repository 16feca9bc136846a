import * as tf from '@tensorflow/tfjs'
import type { RecordBatch, Schema } from 'apache-arrow'
import _ from 'highland'
import { z } from 'zod'
import { UttError, asUttError } from '../../schemas/errors.js'
import { encodeF16 } from '../../schemas/float16.js'
import { makeSchema } from '../../schemas/kinds.js'
import { readMeta } from '../../schemas/metadata.js'
import { getMatrix, makeUttBatch, uttId } from '../../schemas/utterance.js'
import type { OpenInput, StagePlan } from '../../pipeline/io/command.js'
import { type BackendName, type Model, OrtDnn, framePasses } from '../nn/index.js'
import { type ModelMeta, loadModel } from '../train/model-store.js'
import type { CorpusUtt } from '../train/corpus.js'
import { spliceFrameInto } from '../train/frame-batches.js'
import { useBackend } from '../train/session.js'
import { firstNonFinite } from '../train/survey.js'

/**
 * `ktp infer`: run a trained network (a teacher) over a feature stream and write what it says
 * about every frame as soft targets (docs/ARCHITECTURE.md §2, §5):
 *   dense  `logp` = log softmax(z) at T = 1 for all C classes, f32 or f16;
 *   top-k  the k largest log-probabilities with their class ids, and the tail mass τ = 1 − Σ p_k.
 * Log-probabilities at T = 1 let each student choose its own T later: softmax(log p / T) =
 * softmax(z / T). For top-k, the unlisted classes are taken to share τ equally (see
 * stages/train/soft-targets.ts). Splicing follows the teacher's metadata.
 */
export const inferOptions = z.object({
  topK: z
    .number()
    .int()
    .min(0)
    .default(0)
    .describe('keep the k most probable classes per frame (0 = dense, all classes)'),
  dtype: z.enum(['f32', 'f16']).default('f16').describe('storage type of the log-probabilities'),
  batchUtts: z
    .number()
    .int()
    .positive()
    .default(32)
    .describe('at most this many utterances per forward pass (frame models)'),
  batchFrames: z
    .number()
    .int()
    .positive()
    .default(1024)
    .describe('at most this many frames per forward pass (frame models): bounds the memory a pass takes'),
})
export type InferOptions = z.infer<typeof inferOptions>

export function inferSchema(
  meta: ModelMeta,
  o: Pick<InferOptions, 'topK' | 'dtype'>,
  featureFingerprint: string,
): Schema {
  const C = meta.numClasses
  const k = o.topK > 0 ? Math.min(o.topK, C) : 0
  const metadata: Record<string, string> = {
    'ktp.num_classes': String(C),
    'ktp.feature_fingerprint': featureFingerprint,
    'ktp.teacher_fingerprint': meta.fingerprint,
    'ktp.storage': k ? `top${k}-${o.dtype}` : `dense-${o.dtype}`,
    'ktp.temperature': '1',
  }
  if (meta.inventory) metadata['ktp.inventory'] = JSON.stringify(meta.inventory)
  if (meta.priors) metadata['ktp.priors'] = JSON.stringify(meta.priors)
  return k
    ? makeSchema('soft-topk', {
        widths: { ids: k, logp: k },
        types: { ids: C <= 65535 ? 'u16' : 'u32', logp: o.dtype },
        metadata,
      })
    : makeSchema('soft-dense', { widths: { logp: C }, types: { logp: o.dtype }, metadata })
}

/** One utterance's frames spliced as the model was trained: [T × D·(L+R+1)]. */
function spliced(meta: ModelMeta, feats: Float32Array, frames: number, dim: number): Float32Array {
  const { left, right } = meta.splice
  const inDim = dim * (left + right + 1)
  const x = new Float32Array(frames * inDim)
  const u = { utt: '', frames, dim, feats }
  for (let t = 0; t < frames; t++) spliceFrameInto(u, t, left, right, x, t * inDim)
  return x
}

/** The target delay a model was trained with (0 for frame models and models that predate it). */
export function delayOf(model: Model, meta: ModelMeta): number {
  return model.input === 'chunks' ? (meta.delay ?? 0) : 0
}

/**
 * Network input for one utterance: spliced frames [T, D·(L+R+1)], or a sequence [1, T + d, D]
 * whose last frame is repeated d times (the delay positions, as in training's chunks).
 */
function inputOf(model: Model, meta: ModelMeta, feats: Float32Array, frames: number, dim: number): tf.Tensor {
  if (model.input === 'chunks') {
    const d = delayOf(model, meta)
    if (d === 0) return tf.tensor3d(feats, [1, frames, dim])
    const x = new Float32Array((frames + d) * dim)
    x.set(feats.subarray(0, frames * dim))
    const last = feats.subarray((frames - 1) * dim, frames * dim)
    for (let p = frames; p < frames + d; p++) x.set(last, p * dim)
    return tf.tensor3d(x, [1, frames + d, dim])
  }
  const x = spliced(meta, feats, frames, dim)
  return tf.tensor2d(x, [frames, x.length / frames])
}

/**
 * Log-probabilities [T, C] of one utterance's frames. A model trained with target delay d names
 * frame t at output t + d, so outputs d … T + d − 1 are frames 0 … T − 1.
 */
export function logProbs(model: Model, meta: ModelMeta, feats: Float32Array, frames: number, dim: number): tf.Tensor2D {
  return tf.tidy(() => {
    const x = inputOf(model, meta, feats, frames, dim)
    const d = delayOf(model, meta)
    const z = tf.reshape(model.apply(x), [frames + d, meta.numClasses])
    return tf.logSoftmax(d > 0 ? tf.slice(z, [d, 0], [frames, meta.numClasses]) : z) as tf.Tensor2D
  })
}

/** One utterance's soft-target row from its log-probabilities. */
export async function softRowBatch(
  schema: Schema,
  utt: string,
  lp: tf.Tensor2D,
  o: InferOptions,
): Promise<RecordBatch> {
  const [_frames, C] = lp.shape
  const k = o.topK > 0 ? Math.min(o.topK, C) : 0
  const store = (a: Float32Array) => (o.dtype === 'f16' ? encodeF16(a) : a)
  // finite input, non-finite output: the model itself is damaged (diverged weights)
  const finite = (a: Float32Array) => {
    const bad = firstNonFinite(a)
    if (bad >= 0)
      throw new UttError(
        'non-finite',
        utt,
        `the model gives a non-finite log-probability at frame ${Math.floor(bad / (k || C))} (are its weights finite?)`,
      )
    return a
  }
  if (!k) return makeUttBatch(schema, { utt, logp: store(finite((await lp.data()) as Float32Array)) })
  const { values, indices } = tf.topk(lp, k, true)
  const tailT = tf.tidy(() => tf.maximum(tf.sub(1, tf.sum(tf.exp(values), 1)), 0))
  const [v, i, tail] = await Promise.all([values.data(), indices.data(), tailT.data()])
  tf.dispose([values, indices, tailT])
  const ids = C <= 65535 ? Uint16Array.from(i as Int32Array) : Uint32Array.from(i as Int32Array)
  return makeUttBatch(schema, {
    utt,
    ids,
    logp: store(finite(v as Float32Array)),
    tail: Float32Array.from(tail as Float32Array),
  })
}

/**
 * The stream stage: features@1 utterances in, soft targets out, failures per utterance. Frame
 * models run groups of `batchUtts` utterances, in forward passes of at most `batchFrames` frames
 * (one GEMM instead of many small ones, in wasm memory bounded by the budget: stages/nn/frame-passes.ts);
 * sequence models run one utterance at a time (no padding, exact recurrences).
 */
export function inferStage(model: Model, meta: ModelMeta, schema: Schema, o: InferOptions, ort: OrtDnn | null = null) {
  const checked = (b: RecordBatch) => {
    const m = getMatrix(b, 'feats')
    if (m.width !== meta.featureDim) {
      throw new UttError('dim-mismatch', uttId(b), `features have dim ${m.width}, the model expects ${meta.featureDim}`)
    }
    // a NaN in is a NaN out in every frame it reaches: never write it as soft targets
    const bad = firstNonFinite(m.data)
    if (bad >= 0)
      throw new UttError(
        'non-finite',
        uttId(b),
        `non-finite feature (NaN or Inf) at frame ${Math.floor(bad / m.width)}; no soft targets written for it`,
      )
    return m
  }
  const one = async (b: RecordBatch): Promise<RecordBatch> => {
    const utt = uttId(b)
    try {
      const m = checked(b)
      const lp = logProbs(model, meta, m.data, m.frames, m.width)
      try {
        return await softRowBatch(schema, utt, lp, o)
      } finally {
        lp.dispose()
      }
    } catch (err) {
      throw asUttError(err, utt)
    }
  }
  const { left, right } = meta.splice
  const inDim = meta.featureDim * (left + right + 1)
  const C = meta.numClasses
  // ONNX Runtime (--backend onnxruntime) runs the forward pass; top-k and storage stay as on tfjs
  const forward = async (x: Float32Array, rows: number): Promise<tf.Tensor2D> =>
    ort
      ? tf.tensor2d(await ort.logProbs(x, rows), [rows, C])
      : tf.tidy(() => tf.logSoftmax(model.apply(tf.tensor2d(x, [rows, inDim]))) as tf.Tensor2D)
  const group = async (bs: RecordBatch[]): Promise<(RecordBatch | UttError)[]> => {
    const ok: { i: number; utt: CorpusUtt }[] = []
    const out: (RecordBatch | UttError)[] = new Array(bs.length)
    bs.forEach((b, i) => {
      try {
        const m = checked(b)
        if (m.frames === 0) throw new UttError('no-frames', uttId(b), 'no frames')
        ok.push({ i, utt: { utt: uttId(b), frames: m.frames, dim: m.width, feats: m.data } })
      } catch (err) {
        out[i] = asUttError(err, uttId(b))
      }
    })
    // the log-probabilities of an utterance cut across passes, until its last piece comes
    const earlier: tf.Tensor2D[] = []
    try {
      for (const pass of framePasses(
        ok.map((u) => u.utt.frames),
        o.batchFrames,
      )) {
        const rows = pass.reduce((a, p) => a + p.to - p.from, 0)
        const x = new Float32Array(rows * inDim)
        let r = 0
        for (const p of pass)
          for (let t = p.from; t < p.to; t++) spliceFrameInto(ok[p.utt].utt, t, left, right, x, inDim * r++)
        const lp = await forward(x, rows)
        try {
          let start = 0
          for (const p of pass) {
            const piece = tf.slice(lp, [start, 0], [p.to - p.from, C])
            start += p.to - p.from
            const { i, utt } = ok[p.utt]
            if (p.to < utt.frames) {
              earlier.push(piece)
              continue
            }
            const whole = earlier.length > 0 ? tf.concat([...earlier, piece]) : piece
            try {
              out[i] = await softRowBatch(schema, utt.utt, whole, o)
            } finally {
              tf.dispose([...earlier.splice(0), piece, whole])
            }
          }
        } finally {
          lp.dispose()
        }
      }
    } finally {
      tf.dispose(earlier)
    }
    return out
  }
  return (s: Highland.Stream<RecordBatch>): Highland.Stream<RecordBatch> => {
    if (model.input === 'chunks') return s.flatMap((b) => _(one(b)))
    // a failed utterance becomes an error in the stream (reported by the runner), the rest flow on
    return s
      .batch(o.batchUtts)
      .flatMap((bs) => _(group(bs)))
      .flatMap((rs) =>
        _(rs).map((r) => {
          if (r instanceof UttError) throw r
          return r
        }),
      )
  }
}

export function featureFingerprintOf(schema: Schema): string {
  return readMeta(schema).fingerprint ?? 'unknown'
}

/**
 * A run of the teacher in `modelDir` over the input, on the given tfjs backend. The teacher's
 * fingerprint enters the output's; --batch-utts and --batch-frames do not (they change speed and
 * memory, not values).
 */
export type InferBackend = BackendName | 'onnxruntime'

export async function planInfer(
  o: InferOptions,
  teacher: { model: string; backend: InferBackend },
  open: OpenInput,
): Promise<StagePlan> {
  const { model, meta } = loadModel(teacher.model)
  const input = await open()
  const onOrt = teacher.backend === 'onnxruntime'
  // on ONNX Runtime, tfjs still does the top-k and storage: on wasm
  await useBackend(onOrt ? 'wasm' : (teacher.backend as BackendName), (l) => process.stderr.write(`${l}\n`))
  const ort = onOrt ? await OrtDnn.create(model) : null
  const schema = inferSchema(meta, o, featureFingerprintOf(input.schema))
  return {
    stage: 'infer',
    options: { ...o, teacher: meta.fingerprint, batchUtts: undefined, batchFrames: undefined },
    input,
    schema,
    transform: inferStage(model, meta, schema, o, ort),
  }
}
