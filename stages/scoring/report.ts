/**
 * Reports in sclite's shapes: the `sum` table (SYSTEM SUMMARY PERCENTAGES by SPEAKER) and a JSON
 * form of the same numbers.
 *
 * Rounding is sclite's, not printf's: sclite prints F_ROUND(x, 1) = (int)(x*10 + 0.5) / 10 with
 * "%.1f", i.e. halves round up (6.25% prints as 6.3, where printf alone would give 6.2).
 * The Mean / S.D. / Median rows are over speakers (S.D. with n-1, as sclite; median of an even
 * count is the mean of the middle two).
 * The layout reproduces sclite 2.10's table for speaker names up to a few characters wider than
 * "Median" and counts below 10^4 sentences / 10^5 words; beyond that columns widen to fit.
 */
import type { ScoreResult, ScoreSummary } from './score.js'

/** sclite's F_ROUND(x, 1) then "%.1f". */
export function fmt1(x: number): string {
  const r = Math.trunc(x * 10 + (x > 0 ? 0.5 : -0.5)) / 10
  return (r === 0 ? 0 : r).toFixed(1)
}

function mean(xs: readonly number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length
}
function sd(xs: readonly number[]): number {
  if (xs.length < 2) return 0
  const m = mean(xs)
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) * (x - m), 0) / (xs.length - 1))
}
function median(xs: readonly number[]): number {
  if (xs.length === 0) return 0
  const s = [...xs].sort((a, b) => a - b)
  const h = s.length >> 1
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2
}

const center = (s: string, w: number): string => {
  const left = Math.max(0, Math.floor((w - s.length) / 2))
  return (' '.repeat(left) + s).padEnd(w)
}

/** The row values of one table line: name, two count cells, six percentage cells. */
type Row = { name: string; centered: boolean; snt: string; wrd: string; cells: string[] }

function rowOf(s: ScoreSummary, name: string): Row {
  const p = s.pct
  return {
    name,
    centered: false,
    snt: String(s.sentences),
    wrd: String(s.words),
    cells: [p.corr, p.sub, p.del, p.ins, p.err, p.sentErr].map(fmt1),
  }
}

function statRow(name: string, f: (xs: number[]) => number, spk: readonly ScoreSummary[]): Row {
  const col = (g: (s: ScoreSummary) => number) => fmt1(f(spk.map(g)))
  return {
    name,
    centered: true,
    snt: col((s) => s.sentences),
    wrd: col((s) => s.words),
    cells: [
      col((s) => s.pct.corr),
      col((s) => s.pct.sub),
      col((s) => s.pct.del),
      col((s) => s.pct.ins),
      col((s) => s.pct.err),
      col((s) => s.pct.sentErr),
    ],
  }
}

/**
 * The `sum` report text: title, blank line and the table, centred on an 80-column page like
 * sclite's (sclite itself adds three blank lines before and some after).
 */
export function formatSumTable(result: ScoreResult, title: string): string {
  const spk = result.speakers
  const rows: Row[] = spk.map((s) => rowOf(s, s.speaker))
  const sumRow = rowOf(result.overall, 'Sum/Avg')
  const stats = [statRow('Mean', mean, spk), statRow('S.D.', sd, spk), statRow('Median', median, spk)]
  const all = [...rows, sumRow, ...stats]
  // name column: at least "Median" wide; "Sum/Avg" may spill into the right padding
  const nameW = Math.max(6, ...spk.map((s) => s.speaker.length))
  const sntW = Math.max(4, ...all.map((r) => r.snt.length))
  const wrdW = Math.max(5, ...all.map((r) => r.wrd.length))
  const firstW = Math.max(5, ...all.map((r) => r.cells[0]!.length))
  const restW = Math.max(7, ...all.flatMap((r) => r.cells.slice(1).map((c) => c.length + 1)))

  const nameCell = (r: Row) => (r.centered ? ` ${center(r.name, nameW)} ` : ` ${r.name}`.padEnd(nameW + 2))
  const countCell = (r: Row) => ` ${r.snt.padStart(sntW)} ${r.wrd.padStart(wrdW + 1)} `
  const pctCell = (r: Row) =>
    r.cells[0]!.padStart(firstW) +
    r.cells
      .slice(1)
      .map((c) => c.padStart(restW))
      .join('') +
    ' '
  const line = (r: Row) => `|${nameCell(r)}|${countCell(r)}|${pctCell(r)}|`

  const w1 = nameW + 2
  const w2 = sntW + wrdW + 4
  const w3 = firstW + 5 * restW + 1
  const inner = w1 + w2 + w3 + 2
  const header =
    '|' +
    ' SPKR'.padEnd(w1) +
    '|' +
    ` ${'# Snt'.padStart(sntW)} ${'# Wrd'.padStart(wrdW)} `.padStart(w2) +
    '|' +
    ['Corr'.padStart(firstW), ...['Sub', 'Del', 'Ins', 'Err', 'S.Err'].map((h) => h.padStart(restW))].join('') +
    ' |'
  const thin = `|${'-'.repeat(w1)}+${'-'.repeat(w2)}+${'-'.repeat(w3)}|`
  const thick = `|${'='.repeat(inner)}|`

  const table: string[] = [
    `,${'-'.repeat(inner)}.`,
    `|${center(title, inner)}|`,
    `|${'-'.repeat(inner)}|`,
    header,
    thin,
  ]
  rows.forEach((r, i) => {
    if (i > 0) table.push(thin)
    table.push(line(r))
  })
  table.push(thick, line(sumRow), thick, ...stats.map(line), `\`${'-'.repeat(inner)}'`)
  const indent = ' '.repeat(Math.max(0, Math.floor((80 - (inner + 2)) / 2)))
  const heading = center('SYSTEM SUMMARY PERCENTAGES by SPEAKER', 80)
  return `${[heading, '', ...table.map((l) => indent + l)].join('\n')}\n`
}

/** Machine-readable form: counts plus unrounded and sclite-rounded percentages. */
export function scoreToJson(result: ScoreResult, withUtterances = false): object {
  const one = (s: ScoreSummary) => ({
    speaker: s.speaker,
    sentences: s.sentences,
    words: s.words,
    corr: s.corr,
    sub: s.sub,
    del: s.del,
    ins: s.ins,
    errors: s.errors,
    sentenceErrors: s.sentenceErrors,
    pct: s.pct,
    rounded: Object.fromEntries(Object.entries(s.pct).map(([k, v]) => [k, Number(fmt1(v))])),
  })
  return {
    kind: 'ktp.score',
    version: 1,
    overall: one(result.overall),
    speakers: result.speakers.map(one),
    ...(withUtterances
      ? {
          utterances: result.utterances.map((u) => ({
            id: u.id,
            speaker: u.speaker,
            corr: u.corr,
            sub: u.sub,
            del: u.del,
            ins: u.ins,
            ops: u.pairs.map((p) => p.op).join(''),
          })),
        }
      : {}),
  }
}
