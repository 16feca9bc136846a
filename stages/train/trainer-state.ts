import { KtpError } from '../../schemas/errors.js'
import type { Model } from '../nn/index.js'
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js'
import type { NewbobState } from './newbob.js'
import type { Optimizer } from './optimizer.js'

/**
 * Everything the trainer needs to continue exactly where it stopped: where in the data it is, the
 * schedule, the epochs so far, the running sums of the unfinished epoch and newbob's best weights.
 * The weights and optimizer slots themselves live in the model and the optimizer; `saveState`
 * writes all of it as one checkpoint (checkpoint.ts: atomic, so a kill -9 keeps the previous one).
 */
export interface EpochRecord {
  phase: string
  epoch: number
  lr: number
  train_loss: number
  train_accuracy: number | null
  heldout_loss: number
  heldout_accuracy: number
  accepted: boolean
  rows_per_s: number
  bad_batches: number
  seconds: number
}

/** Running sums over the batches of the current epoch. */
export interface Tally {
  loss: number
  rows: number
  correct: number
  counted: number
  bad: number
}

export const emptyTally = (): Tally => ({ loss: 0, rows: 0, correct: 0, counted: 0, bad: 0 })

export interface TrainerState {
  /** The epoch being run (0-based) and how many of its batches are done. */
  epoch: number
  skip: number
  schedule: NewbobState
  records: EpochRecord[]
  partial: Tally
  /** Newbob's best weights so far (a rejected epoch goes back to them). */
  best: Record<string, Float32Array>
}

/** What identifies a checkpoint as this run's: the file, the run's fingerprint and the phase. */
export interface CheckpointKey {
  path: string
  fingerprint: string
  phase: string
}

interface Header {
  fingerprint: string
  phase: string
  epoch: number
  skip: number
  schedule: NewbobState
  optimizerT: number
  records: EpochRecord[]
  partial: Tally
}

/**
 * Load the checkpoint of `key` into `model` and `opt` and return the rest of the state, or null
 * when there is none for this phase. A checkpoint of other options or data is an error, never
 * silently mixed in.
 */
export function restoreState(key: CheckpointKey, model: Model, opt: Optimizer): TrainerState | null {
  const ck = loadCheckpoint<Header>(key.path)
  if (!ck || ck.header.phase !== key.phase) return null
  if (ck.header.fingerprint !== key.fingerprint) {
    throw new KtpError(
      'checkpoint-mismatch',
      `${key.path} was written by a run with other options or data; delete it or drop --resume`,
    )
  }
  const params: Record<string, Float32Array> = {}
  const best: Record<string, Float32Array> = {}
  const slots: Record<string, Float32Array> = {}
  for (const [k, v] of Object.entries(ck.arrays)) {
    if (k.startsWith('param:')) params[k.slice(6)] = v
    else if (k.startsWith('best:')) best[k.slice(5)] = v
    else if (k.startsWith('slot:')) slots[k.slice(5)] = v
  }
  model.params.loadFlat(params)
  opt.load({ t: ck.header.optimizerT, slots })
  const { epoch, skip, schedule, records, partial } = ck.header
  return { epoch, skip, schedule, records, partial, best }
}

/** Write the model, the optimizer and `state` as the checkpoint of `key`. */
export function saveState(key: CheckpointKey, model: Model, opt: Optimizer, state: TrainerState): void {
  const arrays: Record<string, Float32Array> = {}
  for (const [k, v] of Object.entries(model.params.toFlat())) arrays[`param:${k}`] = v
  for (const [k, v] of Object.entries(state.best)) arrays[`best:${k}`] = v
  const st = opt.state()
  for (const [k, v] of Object.entries(st.slots)) arrays[`slot:${k}`] = v
  const { epoch, skip, schedule, records, partial } = state
  const header: Header = {
    fingerprint: key.fingerprint,
    phase: key.phase,
    epoch,
    skip,
    schedule,
    optimizerT: st.t,
    records,
    partial,
  }
  saveCheckpoint(key.path, { header: header as unknown as Record<string, unknown>, arrays })
}
