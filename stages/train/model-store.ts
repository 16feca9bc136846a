import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { KtpError } from '../../schemas/errors.js'
import { writeFileAtomic } from '../../pipeline/io/atomic-file.js'
import { type Model, type ModelSpecOf, ModelSpecSchema, buildModel } from '../nn/index.js'
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js'

/**
 * A trained ktp model directory:
 *   ktp.json    what the network is and what it expects: spec (rebuilds the network exactly),
 *               input splicing, feature fingerprint, label inventory, class priors (for hybrid
 *               decoding), the training configuration and log summary, and the model's fingerprint
 *   params.bin  the weights (checkpoint format: named float32 arrays)
 *   tfjs/       the same network as a plain tfjs-layers model (model.json + weights), written when
 *               the architecture has a standard-layer export, for users outside ktp
 * `ktp.json` is written last, so a directory with one is complete.
 */
export const MODEL_FORMAT = 'ktp.model@1'

export interface ModelMeta {
  format: typeof MODEL_FORMAT
  spec: ModelSpecOf
  /** Frame context the network's input is spliced with (DNN teachers); 0/0 for recurrent models. */
  splice: { left: number; right: number }
  /**
   * Target delay d of a chunk model (train --delay): its output at t names frame t − d. Absent in
   * models written before it was recorded (and in frame models): 0.
   */
  delay?: number
  featureDim: number
  featureFingerprint: string | null
  numClasses: number
  inventory: string[] | null
  /** Class priors from the training labels (hybrid decoding: log p(x|s) ∝ log p(s|x) − log p(s)). */
  priors: number[] | null
  /** Identity of this model: training options + input fingerprints. */
  fingerprint: string
  /** What the up-to-date check compares (fingerprint + selection options). */
  build: string
  training: Record<string, unknown>
}

export function saveModel(dir: string, model: Model, meta: Omit<ModelMeta, 'format' | 'spec'>): void {
  saveCheckpoint(join(dir, 'params.bin'), { header: { format: MODEL_FORMAT }, arrays: model.params.toFlat() })
  const full: ModelMeta = { format: MODEL_FORMAT, spec: model.spec, ...meta }
  writeFileAtomic(join(dir, 'ktp.json'), `${JSON.stringify(full, null, 1)}\n`)
}

export function readModelMeta(dir: string): ModelMeta | null {
  const p = join(dir, 'ktp.json')
  if (!existsSync(p)) return null
  let meta: ModelMeta
  try {
    meta = JSON.parse(readFileSync(p, 'utf8')) as ModelMeta
  } catch (err) {
    throw new KtpError('bad-model', `${p}: not valid JSON (${(err as Error).message})`)
  }
  if (meta.format !== MODEL_FORMAT)
    throw new KtpError('bad-model', `${p}: format '${meta.format}', expected ${MODEL_FORMAT}`)
  const spec = ModelSpecSchema.safeParse(meta.spec)
  if (!spec.success)
    throw new KtpError(
      'bad-model',
      `${p}: invalid spec: ${spec.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    )
  meta.spec = spec.data
  return meta
}

export function loadModel(dir: string): { model: Model; meta: ModelMeta } {
  const meta = readModelMeta(dir)
  if (!meta)
    throw new KtpError('no-model', `${dir}: no ktp.json; not a ktp model directory (or its training did not finish)`)
  let ck: ReturnType<typeof loadCheckpoint>
  try {
    ck = loadCheckpoint(join(dir, 'params.bin'))
  } catch (err) {
    if (!(err instanceof KtpError)) throw err
    // a model's weights are not a resumable checkpoint: "delete it" is not the advice here
    throw new KtpError(
      'bad-model',
      `${err.message.replace(/; delete it to start afresh$/, '')}; the model's weights are damaged: copy or train the model again`,
    )
  }
  if (!ck) throw new KtpError('bad-model', `${join(dir, 'params.bin')}: missing; the model's weights are not there`)
  const model = buildModel(meta.spec)
  try {
    model.params.loadFlat(ck.arrays)
  } catch (err) {
    throw new KtpError('bad-model', `${join(dir, 'params.bin')}: ${(err as Error).message}`)
  }
  return { model, meta }
}
