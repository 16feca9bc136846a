import { join } from 'node:path'
import { KtpError } from '../../schemas/errors.js'
import type { Recipe, Step } from './runner.js'

/**
 * Speaker cross-validation for the recipes (issue 15, "evaluation with power"): one test speaker
 * (or group of speakers) per fold, rotated, so that a claim rests on every speaker rather than on
 * one. Speakers are taken in a fixed order — their ids sorted — so that fold f names the same
 * speakers whatever K is: `--folds K` runs the first K rotations, and raising K adds folds without
 * touching the ones already run.
 */
export interface Fold {
  /** 0-based rotation index. */
  index: number
  /** `fold-<first test speaker>`: the fold's output folder and the prefix of its step names. */
  name: string
  test: string[]
  /** Held-out speakers for newbob and decoder tuning; never in training. */
  dev: string[]
}

/**
 * Check the corpus' speakers can be folded `k` ways, as one actionable line (exit 2) before any
 * step is planned: an integer k ≥ 1, at most the number of rotations, no speaker without
 * utterances, and at least three speakers (one to test, one for dev, one to train on).
 */
export function checkFoldable(
  speakers: Map<string, number>,
  k: number,
  corpus: string,
  rotations: number = speakers.size,
): string[] {
  if (!Number.isInteger(k) || k < 1) throw new KtpError('usage', `--folds: expected an integer ≥ 1, got ${k}`)
  const empty = [...speakers].filter(([, n]) => n === 0).map(([s]) => s)
  if (empty.length)
    throw new KtpError(
      'usage',
      `${corpus}: speaker ${empty.map((s) => `'${s}'`).join(', ')} has no utterances; remove it or add its recordings`,
    )
  const sorted = [...speakers.keys()].sort()
  if (sorted.length < 3)
    throw new KtpError(
      'usage',
      `${corpus}: ${sorted.length} speaker(s) (${sorted.join(', ')}); --folds needs at least 3 (a test, a dev and a training speaker)`,
    )
  if (k > rotations)
    throw new KtpError(
      'usage',
      `--folds ${k}: the corpus has only ${rotations} fold(s) (${sorted.length} speakers in ${corpus}); give --folds 1..${rotations}`,
    )
  return sorted
}

/**
 * Leave-one-speaker-out: in fold f the f-th speaker (ids sorted) is the test speaker, the next one
 * (cyclically) is the dev speaker, and training is every other speaker.
 */
export function leaveOneSpeakerOut(speakers: Map<string, number>, k: number, corpus: string): Fold[] {
  const sorted = checkFoldable(speakers, k, corpus)
  return Array.from({ length: k }, (_, f) => ({
    index: f,
    name: `fold-${sorted[f]}`,
    test: [sorted[f]],
    dev: [sorted[(f + 1) % sorted.length]],
  }))
}

/**
 * Test groups of speakers: speaker i (ids sorted) is in group i mod `groups`, so each group mixes
 * the whole range of ids (TIMIT's start with the sex). Dev is left to the recipe (carved from the
 * remaining speakers, out of training).
 */
export function speakerGroups(speakers: Map<string, number>, groups: number, k: number, corpus: string): Fold[] {
  const sorted = checkFoldable(speakers, k, corpus, Math.min(groups, speakers.size))
  const n = Math.min(groups, sorted.length)
  return Array.from({ length: k }, (_, f) => {
    const test = sorted.filter((_, i) => i % n === f)
    return { index: f, name: `fold-${test[0]}`, test, dev: [] }
  })
}

/** Rename a fold's steps `fold-x/step`: unique names in one plan, stamps and logs in a folder per fold. */
function prefixed(fold: Fold, steps: Step[]): Step[] {
  return steps.map((s) => ({ ...s, name: `${fold.name}/${s.name}` }))
}

/** Where a fold's outputs go. */
export const foldOut = (out: string, fold: Fold) => join(out, fold.name)

/**
 * Every fold's own recipe (each a complete run under OUT/fold-x/, its steps renamed `fold-x/…`),
 * then the steps that pool them.
 */
export function foldsRecipe(name: string, perFold: { fold: Fold; recipe: Recipe }[], pooled: Step[]): Recipe {
  return { name, steps: [...perFold.flatMap((r) => prefixed(r.fold, r.recipe.steps)), ...pooled] }
}
