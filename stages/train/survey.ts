import { KtpError } from '../../schemas/errors.js'
import { getMatrix, uttId } from '../../schemas/utterance.js'
import { openArrow } from '../../pipeline/io/arrow-source.js'
import { puller } from '../../pipeline/io/pull.js'
import type { LabelSet } from './corpus.js'

/**
 * What training checks before epoch 1, so that bad data is refused (or its bad utterances named)
 * up front instead of surfacing as "loss 0.0000, held-out acc NaN%" or as silently skipped batches
 * an epoch later: one streamed pass over a features file gives its utterances, their frame counts
 * and the first non-finite value of each; the labels, already in memory, are checked against the
 * class range.
 */
export interface FeatureSurvey {
  path: string
  dim: number
  frames: Map<string, number>
  /** Utterances with a NaN or ±Inf feature: the first such frame. */
  nonFinite: Map<string, number>
}

export async function surveyFeatures(path: string): Promise<FeatureSurvey> {
  const src = await openArrow(path, ['features'])
  const frames = new Map<string, number>()
  const nonFinite = new Map<string, number>()
  let dim = 0
  const next = puller(src.stream())
  try {
    for (let b = await next(); b; b = await next()) {
      const utt = uttId(b)
      const m = getMatrix(b, 'feats')
      dim = m.width
      frames.set(utt, m.frames)
      const bad = firstNonFinite(m.data)
      if (bad >= 0) nonFinite.set(utt, Math.floor(bad / Math.max(1, m.width)))
    }
  } finally {
    await src.close()
  }
  if (frames.size === 0) dim = widthOf(src.schema.fields.find((f) => f.name === 'feats')?.type)
  return { path, dim, frames, nonFinite }
}

/** Index of the first NaN/±Inf in `a`, or −1. */
export function firstNonFinite(a: ArrayLike<number>): number {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return i
  return -1
}

function widthOf(t: unknown): number {
  return (t as { children?: { type: { listSize: number } }[] })?.children?.[0]?.type.listSize ?? 0
}

/**
 * Every label must be a class id in [0, C): a label outside it would train against a zero one-hot
 * row (a silent no-op) or crash in the middle of an epoch. Names the first offender.
 */
export function checkLabelRange(labels: LabelSet, numClasses: number, path: string): void {
  for (const [utt, ids] of labels.map) {
    for (let t = 0; t < ids.length; t++) {
      const id = ids[t]
      if (id < 0 || id >= numClasses) {
        throw new KtpError(
          'bad-label',
          `${path}: utterance '${utt}' frame ${t} has label ${id}, outside the valid range 0..${numClasses - 1} (${numClasses} classes` +
            `${labels.declaredClasses === null ? ', from the largest label seen' : ', from its ktp.num_classes'})`,
        )
      }
    }
  }
}

/** One utterance that training leaves out, and why. */
export interface SkippedUtt {
  utt: string
  why: string
}

/**
 * The utterances of one split (training or held-out) that training can use: in `select`, with
 * finite features and as many labels as frames. The others are returned with their reason.
 */
export function usableUtts(
  feats: FeatureSurvey,
  labels: LabelSet,
  labelsPath: string,
  select: (utt: string) => boolean,
): { usable: Set<string>; skipped: SkippedUtt[]; common: number } {
  const usable = new Set<string>()
  const skipped: SkippedUtt[] = []
  let common = 0
  for (const [utt, frames] of feats.frames) {
    if (!select(utt)) continue
    const l = labels.map.get(utt)
    if (l) common++
    const bad = feats.nonFinite.get(utt)
    if (bad !== undefined)
      skipped.push({ utt, why: `non-finite feature (NaN or Inf) at frame ${bad} in ${feats.path}` })
    else if (!l) skipped.push({ utt, why: `no labels in ${labelsPath}` })
    else if (l.length !== frames)
      skipped.push({ utt, why: `${frames} feature frames in ${feats.path} but ${l.length} labels in ${labelsPath}` })
    else usable.add(utt)
  }
  return { usable, skipped, common }
}

/**
 * The refusal when a split has nothing to train or evaluate on, with the counts that show why
 * (no ids in common, or every common utterance bad).
 */
export function noUsableUtts(
  what: 'training' | 'held-out',
  feats: FeatureSurvey,
  labels: LabelSet,
  labelsPath: string,
  found: { skipped: SkippedUtt[]; common: number },
): KtpError {
  const counts = `${feats.path}: ${feats.frames.size} utterances, ${labelsPath}: ${labels.map.size}`
  if (found.common === 0)
    return new KtpError(
      'no-data',
      `no ${what} utterance has both features (${feats.path}) and labels (${labelsPath}) (${counts}, none in common)`,
    )
  const first = found.skipped[0]
  return new KtpError(
    'no-data',
    `no usable ${what} utterance: all ${found.skipped.length} with features and labels are bad (first: '${first.utt}': ${first.why})`,
  )
}
