/**
 * Newbob learning-rate schedule (Kaldi nnet1's `train_scheduler.sh`): keep the rate while held-out
 * accuracy improves by more than `startHalvingImpr`; once it does not, halve every epoch; stop when
 * the improvement falls below `endHalvingImpr` while halving, or at `maxEpochs`. An epoch whose
 * held-out accuracy got worse is rejected (weights roll back to the best) and halving starts.
 * Pure: the trainer feeds it accuracies and it says what to do, so its state is checkpointable JSON.
 */
export interface NewbobConfig {
  initialLr: number
  minEpochs: number
  maxEpochs: number
  startHalvingImpr: number
  endHalvingImpr: number
  haltingFactor: number
  /** Keep the rate fixed (no halving, no early stop): for a fixed epoch budget. */
  fixed?: boolean
}

export const DEFAULT_NEWBOB: NewbobConfig = {
  initialLr: 0.008,
  minEpochs: 2,
  maxEpochs: 20,
  startHalvingImpr: 0.5,
  endHalvingImpr: 0.1,
  haltingFactor: 0.5,
}

export interface NewbobState {
  lr: number
  halving: boolean
  best: number
  bestEpoch: number
  epoch: number
  done: boolean
  history: { epoch: number; lr: number; accuracy: number; accepted: boolean }[]
}

export function newbobStart(cfg: NewbobConfig): NewbobState {
  return {
    lr: cfg.initialLr,
    halving: false,
    best: -Infinity,
    bestEpoch: -1,
    epoch: 0,
    done: cfg.maxEpochs <= 0,
    history: [],
  }
}

/** After an epoch with held-out accuracy `acc` (percent): accept or reject it, and the next rate. */
export function newbobUpdate(cfg: NewbobConfig, s: NewbobState, acc: number): NewbobState & { accepted: boolean } {
  const epoch = s.epoch + 1
  const impr = acc - (Number.isFinite(s.best) ? s.best : -Infinity)
  const accepted = !Number.isFinite(s.best) || acc >= s.best || cfg.fixed === true
  const best = accepted ? acc : s.best
  const history = [...s.history, { epoch, lr: s.lr, accuracy: acc, accepted }]
  if (cfg.fixed) {
    return {
      lr: s.lr,
      halving: false,
      best,
      bestEpoch: accepted ? epoch : s.bestEpoch,
      epoch,
      done: epoch >= cfg.maxEpochs,
      history,
      accepted,
    }
  }
  let halving = s.halving
  let done = epoch >= cfg.maxEpochs
  // As Kaldi's train_scheduler.sh: min-epochs only delays the stop, never the halving. Gating the
  // halving on it too (as ktp once did) kept the full rate through epochs that had already stalled,
  // and every one of them was rejected and undone.
  if (halving && impr < cfg.endHalvingImpr && epoch >= cfg.minEpochs) done = true
  if (!halving && impr < cfg.startHalvingImpr) halving = true
  const lr = halving ? s.lr * cfg.haltingFactor : s.lr
  return { lr, halving, best, bestEpoch: accepted ? epoch : s.bestEpoch, epoch, done, history, accepted }
}
