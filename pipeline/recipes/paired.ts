/// <reference path="./jstat.d.ts" />
import jStat from 'jstat'

/**
 * A claim "system A beats system B" read as a paired comparison (issue 15): both systems are
 * trained and scored on the same fold with the same seed, so the per-(fold, seed) difference
 * A − B removes what the fold and seed share. Its mean gets a 95 % Student-t interval (n − 1
 * degrees of freedom) and the minimum detectable effect at that n, (t₀.₉₇₅ + t₀.₈)·sd/√n: the
 * smallest true difference a two-sided 5 % test would find with 80 % power. One pair gives no
 * spread, so no interval and no verdict beyond "inconclusive".
 */
export interface Paired {
  n: number
  mean: number
  /** Sample standard deviation of the differences (n − 1); null with one pair. */
  sd: number | null
  /** 95 % interval of the mean difference; null with fewer than two pairs. */
  lo: number | null
  hi: number | null
  /** Minimum detectable effect (80 % power, two-sided 5 %); null with fewer than two pairs. */
  mde: number | null
}

/** The p-quantile of Student's t with `df` degrees of freedom (jStat). */
export function tQuantile(p: number, df: number): number {
  return jStat.studentt.inv(p, df)
}

export function pairedInterval(diffs: number[]): Paired {
  const n = diffs.length
  const mean = n ? diffs.reduce((a, x) => a + x, 0) / n : Number.NaN
  if (n < 2) return { n, mean, sd: null, lo: null, hi: null, mde: null }
  const sd = Math.sqrt(diffs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1))
  const se = sd / Math.sqrt(n)
  const t975 = tQuantile(0.975, n - 1)
  return { n, mean, sd, lo: mean - t975 * se, hi: mean + t975 * se, mde: (t975 + tQuantile(0.8, n - 1)) * se }
}

export type Verdict = 'supported' | 'contradicted' | 'inconclusive' | 'not measured'

/**
 * A claim's verdict from the interval of its differences, `better` saying which sign favours
 * the claim (error rates: A − B below 0). Supported only when the interval excludes 0 on the
 * claim's side, contradicted when it excludes 0 on the other side, else inconclusive.
 */
export function verdict(p: Paired, better: 'negative' | 'positive'): Verdict {
  if (p.n === 0) return 'not measured'
  if (p.lo === null || p.hi === null) return 'inconclusive'
  const [good, bad] = better === 'negative' ? [p.hi < 0, p.lo > 0] : [p.lo > 0, p.hi < 0]
  return good ? 'supported' : bad ? 'contradicted' : 'inconclusive'
}
