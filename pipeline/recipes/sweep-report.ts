import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type * as vegaLite from 'vega-lite'
import { writeFileAtomic } from '../io/atomic-file.js'
import { renderSvg } from './report.js'
import type { SweepAxes, SweepPoint, SweepRun } from './sweep-grid.js'

/**
 * A sweep's results: `sweep.json` (one row per point × system × seed) and `report.md` with
 * vega-lite SVG plots — error rate against data fraction (±1 std bands over seeds), the KT gain
 * over the baseline against data fraction — tables for the other axes, and an automatic reading of
 * where the gain is positive beyond noise.
 */
export interface SweepRow {
  data_fraction: number
  temperature: number
  top_k: number | 'dense'
  optimiser: string
  system: string
  seed: number
  value: number
  frame_accuracy: number
  dev_value: number
  id: string
}

export interface SweepReportInput {
  task: string
  metric: string
  out: string
  axes: SweepAxes
  runs: SweepRun[]
  config: unknown
}

interface Stat {
  mean: number
  std: number
  n: number
}

export function stat(xs: number[]): Stat {
  const n = xs.length
  const mean = xs.reduce((a, b) => a + b, 0) / Math.max(1, n)
  const std = n > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1)) : 0
  return { mean, std, n }
}

/** Two-sided 95 % quantiles of Student's t by degrees of freedom (1…30); beyond that, 1.96. */
const T95 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11,
  2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
]
export const t95 = (df: number) => (df >= 1 && df <= 30 ? T95[df - 1] : 1.96)

/**
 * A paired gain (baseline − student, positive = the student is better) is "beyond noise" when the
 * 95 % confidence interval of its mean over seeds (Student's t, n − 1 degrees of freedom) excludes
 * zero. With two or three seeds that demands a large, consistent gain — on purpose: a sweep is
 * read to decide whether to spend a teacher, and seed noise on a small test set is large.
 */
export function gainVerdict(
  s: Stat,
): 'positive beyond noise' | 'negative beyond noise' | 'within noise' | 'one seed: no noise estimate' {
  if (s.n < 2) return 'one seed: no noise estimate'
  const half = (t95(s.n - 1) * s.std) / Math.sqrt(s.n)
  if (s.mean - half > 0) return 'positive beyond noise'
  if (s.mean + half < 0) return 'negative beyond noise'
  return 'within noise'
}

const topKLabel = (k: number | 'dense') => (k === 'dense' || k === 0 ? 'dense' : `top-${k}`)

/** The label of a point's settings other than data fraction (and `except`), naming only the axes that vary. */
export function settingLabel(pt: SweepPoint, axes: SweepAxes, except?: 'temperature' | 'top_k' | 'optimiser'): string {
  const parts: string[] = []
  if (axes.temperature.length > 1 && except !== 'temperature') parts.push(`T=${pt.temperature}`)
  if (axes.topK.length > 1 && except !== 'top_k') parts.push(topKLabel(pt.topK))
  if (axes.optimiser.length > 1 && except !== 'optimiser') parts.push(pt.optimiser)
  return parts.join(' ') || 'all'
}

export function sweepRows(runs: SweepRun[]): SweepRow[] {
  const rows: SweepRow[] = []
  for (const r of runs) {
    if (!existsSync(r.eval)) continue
    const e = JSON.parse(readFileSync(r.eval, 'utf8')) as { wer: number; frame_accuracy: number; dev_wer: number }
    rows.push({
      data_fraction: r.point.dataFraction,
      temperature: r.point.temperature,
      top_k: r.point.topK,
      optimiser: r.point.optimiser,
      system: r.system,
      seed: r.seed,
      value: e.wer,
      frame_accuracy: e.frame_accuracy,
      dev_value: e.dev_wer,
      id: r.id,
    })
  }
  return rows
}

const pointOf = (r: SweepRow): SweepPoint => ({
  dataFraction: r.data_fraction,
  temperature: r.temperature,
  topK: r.top_k,
  optimiser: r.optimiser as SweepPoint['optimiser'],
})

export interface GroupStat extends Stat {
  setting: string
  data_fraction: number
  system: string
  lo: number
  hi: number
  frame_accuracy: number
}

/** Error rate per (setting, fraction, system) over seeds. */
export function errorStats(rows: SweepRow[], axes: SweepAxes): GroupStat[] {
  const groups = new Map<string, SweepRow[]>()
  for (const r of rows) {
    const k = JSON.stringify([settingLabel(pointOf(r), axes), r.data_fraction, r.system])
    if (!groups.has(k)) groups.set(k, [])
    groups.get(k)!.push(r)
  }
  return [...groups].map(([k, rs]) => {
    const [setting, data_fraction, system] = JSON.parse(k) as [string, number, string]
    const s = stat(rs.map((r) => r.value))
    return {
      setting,
      data_fraction,
      system,
      ...s,
      lo: s.mean - s.std,
      hi: s.mean + s.std,
      frame_accuracy: stat(rs.map((r) => r.frame_accuracy)).mean,
    }
  })
}

/** Paired gains over lstm-baseline (same point, same seed) per (setting, fraction, student). */
export function gainStats(rows: SweepRow[], axes: SweepAxes): GroupStat[] {
  const base = new Map<string, number>()
  const key = (r: SweepRow) => JSON.stringify([r.data_fraction, r.temperature, r.top_k, r.optimiser, r.seed])
  for (const r of rows) if (r.system === 'lstm-baseline') base.set(key(r), r.value)
  const withGain = rows
    .filter((r) => r.system.startsWith('lstm-') && r.system !== 'lstm-baseline' && base.has(key(r)))
    .map((r) => ({ ...r, value: base.get(key(r))! - r.value }))
  return errorStats(withGain, axes)
}

function bandPlot(data: GroupStat[], yTitle: string, logX: boolean, zeroRule: boolean): vegaLite.TopLevelSpec {
  const settings = [...new Set(data.map((d) => d.setting))]
  const x = {
    field: 'data_fraction',
    type: 'quantitative' as const,
    title: 'training-data fraction',
    scale: logX ? { type: 'log' as const } : { zero: false },
  }
  const layers: unknown[] = [
    {
      mark: { type: 'errorband', opacity: 0.2 },
      encoding: {
        x,
        y: { field: 'lo', type: 'quantitative', title: yTitle },
        y2: { field: 'hi' },
        color: { field: 'system', type: 'nominal' },
      },
    },
    {
      mark: { type: 'line', point: true },
      encoding: {
        x,
        y: { field: 'mean', type: 'quantitative', title: yTitle, scale: { zero: false } },
        color: { field: 'system', type: 'nominal' },
      },
    },
  ]
  if (zeroRule) layers.push({ mark: { type: 'rule', strokeDash: [4, 4] }, encoding: { y: { datum: 0 } } })
  const spec = { width: 420, height: 220, layer: layers }
  return (
    settings.length > 1
      ? {
          $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
          data: { values: data },
          facet: { row: { field: 'setting', type: 'nominal', title: null } },
          spec,
        }
      : { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', data: { values: data }, ...spec }
  ) as vegaLite.TopLevelSpec
}

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–')
const pm = (s: Stat) => `${f2(s.mean)} ± ${f2(s.std)}`

/** A table of error rates with one row per value of `axis` (× the other settings and fractions). */
function axisTable(
  errs: GroupStat[],
  rows: SweepRow[],
  axes: SweepAxes,
  axis: 'temperature' | 'top_k' | 'optimiser',
  systems: string[],
): string {
  const label = { temperature: 'temperature', top_k: 'soft targets', optimiser: 'optimiser' }[axis]
  const lines = [
    `| ${label} | other settings | data fraction | ${systems.join(' | ')} |`,
    `|---|---|---|${systems.map(() => '---').join('|')}|`,
  ]
  const keys = new Map<string, SweepRow>()
  for (const r of rows) keys.set(JSON.stringify([r[axis], settingLabel(pointOf(r), axes), r.data_fraction]), r)
  for (const [k, r] of [...keys].sort()) {
    const [, setting, fr] = JSON.parse(k) as [unknown, string, number]
    const cells = systems.map((s) => {
      const g = errs.find((e) => e.setting === setting && e.data_fraction === fr && e.system === s)
      return g ? pm(g) : '–'
    })
    lines.push(
      `| ${axis === 'top_k' ? topKLabel(r.top_k) : r[axis]} | ${settingLabel(pointOf(r), axes, axis)} | ${fr} | ${cells.join(' | ')} |`,
    )
  }
  return lines.join('\n')
}

export function readGains(gains: GroupStat[]): string[] {
  const out: string[] = []
  const students = [...new Set(gains.map((g) => g.system))]
  for (const s of students) {
    for (const setting of [...new Set(gains.map((g) => g.setting))]) {
      const gs = gains
        .filter((g) => g.system === s && g.setting === setting)
        .sort((a, b) => a.data_fraction - b.data_fraction)
      if (!gs.length) continue
      const by = new Map<string, number[]>()
      for (const g of gs) {
        const v = gainVerdict(g)
        if (!by.has(v)) by.set(v, [])
        by.get(v)!.push(g.data_fraction)
      }
      const parts = [...by].map(([v, fs]) => `${v} at data fraction ${fs.join(', ')}`)
      const detail = gs.map((g) => `${g.data_fraction}: ${f2(g.mean)} ± ${f2(g.std)} (n ${g.n})`).join('; ')
      out.push(
        `- **${s}**${setting === 'all' ? '' : ` (${setting})`} vs lstm-baseline: ${parts.join('; ')}. Gain in points: ${detail}.`,
      )
    }
  }
  return out
}

export async function writeSweepReport(r: SweepReportInput): Promise<void> {
  const rows = sweepRows(r.runs)
  const { axes } = r
  writeFileAtomic(
    join(r.out, 'sweep.json'),
    `${JSON.stringify({ task: r.task, metric: r.metric, axes, rows }, null, 1)}\n`,
  )
  const errs = errorStats(rows, axes)
  const gains = gainStats(rows, axes)
  const fr = axes.dataFraction
  const logX = Math.max(...fr) / Math.min(...fr) >= 4
  writeFileAtomic(
    join(r.out, 'error-vs-fraction.svg'),
    await renderSvg(bandPlot(errs, `test ${r.metric} (%)`, logX, false)),
  )
  writeFileAtomic(
    join(r.out, 'kt-gain.svg'),
    await renderSvg(bandPlot(gains, `${r.metric} gain over lstm-baseline (points)`, logX, true)),
  )
  const systems = [...new Set(rows.map((x) => x.system))]
  const table = [
    `| setting | data fraction | system | ${r.metric} mean ± std (%) | seeds | frame accuracy (%) |`,
    '|---|---|---|---|---|---|',
    ...errs
      .sort((a, b) =>
        a.setting < b.setting
          ? -1
          : a.setting > b.setting
            ? 1
            : a.data_fraction - b.data_fraction || systems.indexOf(a.system) - systems.indexOf(b.system),
      )
      .map((g) => `| ${g.setting} | ${g.data_fraction} | ${g.system} | ${pm(g)} | ${g.n} | ${f2(g.frame_accuracy)} |`),
  ].join('\n')
  const axisTables = (
    [
      ['temperature', axes.temperature],
      ['top_k', axes.topK],
      ['optimiser', axes.optimiser],
    ] as const
  )
    .filter(([, v]) => v.length > 1)
    .map(([a]) => `### By ${a === 'top_k' ? 'soft-target storage' : a}\n\n${axisTable(errs, rows, axes, a, systems)}`)
  const md = `# ${r.task}: sweep

Axes: data fraction ${axes.dataFraction.join(', ')}; temperature ${axes.temperature.join(', ')}; soft targets ${axes.topK.map(topKLabel).join(', ')}; optimiser ${axes.optimiser.join(', ')}.
Metric: test ${r.metric} (%), decoding tuned on dev; ${rows.length} rows in sweep.json.

## Where knowledge transfer pays

The gain is lstm-baseline's ${r.metric} minus the student's, paired by seed (positive: the student is better);
"beyond noise" means the 95 % confidence interval of the mean gain over seeds (Student's t) excludes zero.

${readGains(gains).join('\n') || '- (no KT student and baseline pair measured)'}

![error rate against data fraction](error-vs-fraction.svg)

![KT gain against data fraction](kt-gain.svg)

## All points

${table}

${axisTables.join('\n\n')}

Configuration (before the axes are applied):

\`\`\`json
${JSON.stringify(r.config, null, 1)}
\`\`\`
`
  writeFileAtomic(join(r.out, 'report.md'), md)
}
