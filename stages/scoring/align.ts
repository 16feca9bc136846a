/**
 * Minimum-edit-distance word alignment with sclite's costs and tie-breaking.
 *
 * sclite (SCTK src/sclite/net_dp.c, word.c: wwd_WORD) uses substitution 4, insertion 3,
 * deletion 3, correct 0, and fills cell (r, h) by: take the diagonal (correct/substitution) if
 * it is <= both others; else the deletion if it is strictly < the insertion; else the insertion.
 * The trace-back starts at (|ref|, |hyp|). Matching those rules exactly is what makes Corr/Sub/
 * Del/Ins (not only their sum) agree with sclite.
 *
 * Note the weights mean sclite does not always minimise the plain error count: `a b c x y` vs
 * `x y d e f` scores 3 del + 3 ins (weight 18, 6 errors) rather than 5 subs (weight 20, 5 errors).
 * Pass UNIT_COSTS for plain Levenshtein.
 */

export interface EditCosts {
  readonly sub: number
  readonly ins: number
  readonly del: number
}

export const SCLITE_COSTS: EditCosts = Object.freeze({ sub: 4, ins: 3, del: 3 })
export const UNIT_COSTS: EditCosts = Object.freeze({ sub: 1, ins: 1, del: 1 })

/** C = correct, S = substitution, D = deletion (ref word missing), I = insertion. */
export type EditOp = 'C' | 'S' | 'D' | 'I'

export interface AlignedPair {
  readonly op: EditOp
  /** index into ref, -1 for an insertion */
  readonly ref: number
  /** index into hyp, -1 for a deletion */
  readonly hyp: number
}

export interface EditCounts {
  corr: number
  sub: number
  del: number
  ins: number
}

export interface Alignment extends EditCounts {
  readonly pairs: readonly AlignedPair[]
  /** total weighted cost of the chosen path */
  readonly cost: number
}

// back-pointer codes
const B_DIAG = 0
const B_DEL = 1
const B_INS = 2

/** Aligns two token sequences (already case-folded / mapped as wanted). */
export function alignWords(ref: readonly string[], hyp: readonly string[], costs: EditCosts = SCLITE_COSTS): Alignment {
  const n = ref.length
  const m = hyp.length
  const w = m + 1
  const d = new Float64Array((n + 1) * w)
  const back = new Uint8Array((n + 1) * w)
  for (let b = 1; b <= m; b++) {
    d[b] = d[b - 1]! + costs.ins
    back[b] = B_INS
  }
  for (let a = 1; a <= n; a++) {
    d[a * w] = d[(a - 1) * w]! + costs.del
    back[a * w] = B_DEL
    for (let b = 1; b <= m; b++) {
      const sub = d[(a - 1) * w + b - 1]! + (ref[a - 1] === hyp[b - 1] ? 0 : costs.sub)
      const del = d[(a - 1) * w + b]! + costs.del
      const ins = d[a * w + b - 1]! + costs.ins
      const k = a * w + b
      if (sub <= del && sub <= ins) {
        d[k] = sub
        back[k] = B_DIAG
      } else if (del < ins) {
        d[k] = del
        back[k] = B_DEL
      } else {
        d[k] = ins
        back[k] = B_INS
      }
    }
  }
  const pairs: AlignedPair[] = []
  const counts: EditCounts = { corr: 0, sub: 0, del: 0, ins: 0 }
  let a = n
  let b = m
  while (a > 0 || b > 0) {
    const bp = back[a * w + b]!
    if (bp === B_DIAG) {
      const op: EditOp = ref[a - 1] === hyp[b - 1] ? 'C' : 'S'
      if (op === 'C') counts.corr++
      else counts.sub++
      pairs.push({ op, ref: a - 1, hyp: b - 1 })
      a--
      b--
    } else if (bp === B_DEL) {
      counts.del++
      pairs.push({ op: 'D', ref: a - 1, hyp: -1 })
      a--
    } else {
      counts.ins++
      pairs.push({ op: 'I', ref: -1, hyp: b - 1 })
      b--
    }
  }
  pairs.reverse()
  return { ...counts, pairs, cost: d[n * w + m]! }
}

/** Plain Levenshtein distance (unit costs), two-row DP; used as a cross-check. */
export function levenshtein(x: readonly string[], y: readonly string[]): number {
  let prev = new Uint32Array(y.length + 1)
  let cur = new Uint32Array(y.length + 1)
  for (let j = 0; j <= y.length; j++) prev[j] = j
  for (let i = 1; i <= x.length; i++) {
    cur[0] = i
    for (let j = 1; j <= y.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1))
    }
    ;[prev, cur] = [cur, prev]
  }
  return prev[y.length]!
}
