import { readFileSync } from 'node:fs'
import { writeFileAtomic } from '../io/atomic-file.js'
import { parseCtm } from '../../stages/formats/ctm.js'

/**
 * How well an alignment finds the true word boundaries (connected digits are built by
 * concatenation, so every digit's start and end are known): the fraction of true boundaries with
 * an aligned boundary of the same word within `tolerance` seconds. Words are matched in order;
 * silence segments of the alignment are ignored.
 */
export interface BoundaryReport {
  boundaries: number
  within: number
  fraction: number
  tolerance_s: number
  mean_abs_error_s: number
  utterances: number
}

export function compareBoundaries(
  truth: Map<string, { start: number; dur: number; label: string }[]>,
  aligned: Map<string, { start: number; dur: number; label: string }[]>,
  tolerance: number,
  silence = new Set(['sil', '<sil>']),
): BoundaryReport {
  let n = 0
  let ok = 0
  let err = 0
  let utts = 0
  for (const [utt, words] of truth) {
    const ali = (aligned.get(utt) ?? []).filter((s) => !silence.has(s.label))
    if (ali.length !== words.length) continue
    utts++
    words.forEach((w, i) => {
      for (const [a, b] of [
        [w.start, ali[i].start],
        [w.start + w.dur, ali[i].start + ali[i].dur],
      ]) {
        const d = Math.abs(a - b)
        n++
        err += d
        if (d <= tolerance + 1e-9) ok++
      }
    })
  }
  return {
    boundaries: n,
    within: ok,
    fraction: n ? ok / n : 0,
    tolerance_s: tolerance,
    mean_abs_error_s: n ? err / n : NaN,
    utterances: utts,
  }
}

export function boundaryAccuracy(truthCtm: string, alignedCtm: string, tolerance: number, out: string): BoundaryReport {
  const r = compareBoundaries(
    parseCtm(readFileSync(truthCtm, 'utf8'), truthCtm),
    parseCtm(readFileSync(alignedCtm, 'utf8'), alignedCtm),
    tolerance,
  )
  writeFileAtomic(out, `${JSON.stringify(r, null, 1)}\n`)
  return r
}
