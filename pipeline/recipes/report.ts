import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import * as vega from 'vega'
import * as vegaLite from 'vega-lite'
import { writeFileAtomic } from '../io/atomic-file.js'

/**
 * A recipe's results: `results.json` (machine-readable, the format issue 7 fixes), `report.md`
 * (the summary table, an honest reading of the paper's three claims, SVG plots made with
 * vega-lite: learning curves, and error rate per system with ±1 std over seeds).
 */
export interface ReportInput {
  task: string
  metric: string
  out: string
  seeds: number[]
  systems: string[]
  config: unknown
  /** Cross-validation folds, each a whole run in its own folder; absent: the one split in `out`. */
  folds?: { name: string; dir: string }[]
}

interface SystemRow {
  fold: string
  name: string
  seed: number
  value: number
  frame_accuracy: number
  dev_value: number
}

interface Summary {
  name: string
  mean: number
  std: number
  n: number
  frame_accuracy: number
}

export function summarise(rows: SystemRow[], systems: string[]): Summary[] {
  return systems
    .map((name) => {
      const xs = rows.filter((r) => r.name === name)
      const mean = xs.reduce((a, r) => a + r.value, 0) / Math.max(1, xs.length)
      const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, r) => a + (r.value - mean) ** 2, 0) / (xs.length - 1)) : 0
      const fa = xs.reduce((a, r) => a + r.frame_accuracy, 0) / Math.max(1, xs.length)
      return { name, mean, std, n: xs.length, frame_accuracy: fa }
    })
    .filter((s) => s.n > 0)
}

/**
 * A claim "a beats b" (lower error is better) is read as: supported when the gap exceeds the
 * noise (one pooled std, or 0.5 points with a single seed), contradicted when it is the other way
 * beyond noise, else inconclusive.
 */
export function readClaim(a: Summary | undefined, b: Summary | undefined): { verdict: string; gap: number } {
  if (!a || !b) return { verdict: 'not measured', gap: NaN }
  const gap = b.mean - a.mean
  const noise = Math.max(0.5, Math.sqrt((a.std ** 2 + b.std ** 2) / 2))
  const verdict = gap > noise ? 'supported' : gap < -noise ? 'contradicted' : 'inconclusive (within noise)'
  return { verdict, gap }
}

export async function renderSvg(spec: vegaLite.TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' })
  return view.toSVG()
}

function learningCurves(
  out: string,
  systems: string[],
  seeds: number[],
): { system: string; seed: number; phase: string; step: number; accuracy: number }[] {
  const pts: { system: string; seed: number; phase: string; step: number; accuracy: number }[] = []
  for (const system of systems) {
    for (const seed of seeds) {
      const log = join(out, 'exp', `${system}.s${seed}`, 'train.jsonl')
      if (!existsSync(log)) continue
      let step = 0
      for (const line of readFileSync(log, 'utf8').split('\n')) {
        if (!line.trim()) continue
        const r = JSON.parse(line) as { phase?: string; heldout_accuracy?: number }
        if (r.heldout_accuracy === undefined) continue
        pts.push({ system, seed, phase: r.phase ?? '', step: ++step, accuracy: r.heldout_accuracy })
      }
    }
  }
  return pts
}

export async function writeReport(r: ReportInput): Promise<void> {
  const rows: SystemRow[] = []
  for (const fold of r.folds ?? [{ name: 'split', dir: r.out }]) {
    for (const name of r.systems) {
      for (const seed of r.seeds) {
        const p = join(fold.dir, 'eval', `${name}.s${seed}.json`)
        if (!existsSync(p)) continue
        const e = JSON.parse(readFileSync(p, 'utf8')) as { wer: number; frame_accuracy: number; dev_wer: number }
        rows.push({ fold: fold.name, name, seed, value: e.wer, frame_accuracy: e.frame_accuracy, dev_value: e.dev_wer })
      }
    }
  }
  const summary = summarise(rows, r.systems)
  const results = {
    task: r.task,
    metric: r.metric,
    systems: rows.map((x) => ({
      fold: x.fold,
      name: x.name,
      seed: x.seed,
      value: x.value,
      frame_accuracy: x.frame_accuracy,
      dev_value: x.dev_value,
    })),
    summary: summary.map((s) => ({ name: s.name, mean: s.mean, std: s.std, n: s.n })),
  }
  writeFileAtomic(join(r.out, 'results.json'), `${JSON.stringify(results, null, 1)}\n`)

  const by = (n: string) => summary.find((s) => s.name === n)
  const c1 = readClaim(by('lstm-kt'), by('lstm-baseline'))
  const c2 = readClaim(by('lstm-kt'), by('dnn'))
  const c3a = readClaim(by('lstm-kt-rbm'), by('lstm-kt'))
  const c3b = readClaim(by('lstm-layerwise-kt'), by('lstm-kt'))
  const curves = learningCurves(r.out, r.systems, r.seeds)
  writeFileAtomic(
    join(r.out, 'learning-curves.svg'),
    await renderSvg({
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      width: 480,
      height: 260,
      data: { values: curves },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'step', type: 'quantitative', title: 'epoch (all phases)' },
        y: { field: 'accuracy', type: 'quantitative', title: 'held-out frame accuracy (%)', scale: { zero: false } },
        color: { field: 'system', type: 'nominal' },
        detail: { field: 'seed', type: 'nominal' },
      },
    }),
  )
  writeFileAtomic(
    join(r.out, 'error-rates.svg'),
    await renderSvg({
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      width: 420,
      height: 240,
      data: { values: summary.map((s) => ({ ...s, lo: s.mean - s.std, hi: s.mean + s.std })) },
      layer: [
        {
          mark: 'bar',
          encoding: {
            x: { field: 'name', type: 'nominal', sort: r.systems, title: 'system' },
            y: { field: 'mean', type: 'quantitative', title: `test ${r.metric} (%)` },
          },
        },
        {
          mark: { type: 'errorbar' },
          encoding: {
            x: { field: 'name', type: 'nominal', sort: r.systems },
            y: { field: 'lo', type: 'quantitative' },
            y2: { field: 'hi' },
          },
        },
      ],
    }),
  )
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–')
  const table = [
    `| system | ${r.metric} mean (%) | std | seeds | test frame accuracy (%) |`,
    '|---|---|---|---|---|',
    ...summary.map((s) => `| ${s.name} | ${f(s.mean)} | ${f(s.std)} | ${s.n} | ${f(s.frame_accuracy)} |`),
  ].join('\n')
  const boundaries = existsSync(join(r.out, 'boundaries.json'))
    ? (JSON.parse(readFileSync(join(r.out, 'boundaries.json'), 'utf8')) as {
        fraction: number
        tolerance_s: number
        boundaries: number
      })
    : null
  const md = `# ${r.task}: results

Metric: ${r.metric} on the test speaker(s), decoding tuned on the dev speaker(s); seeds ${r.seeds.join(', ')}.
${boundaries ? `Alignment: ${(100 * boundaries.fraction).toFixed(1)}% of ${boundaries.boundaries} true digit boundaries within ${1000 * boundaries.tolerance_s} ms after realignment.\n` : ''}
${table}

## The paper's claims, read on this run

- **C1** \`lstm-kt\` beats \`lstm-baseline\`: ${c1.verdict} (gap ${f(c1.gap)} points).
- **C2** \`lstm-kt\` beats its teacher \`dnn\`: ${c2.verdict} (gap ${f(c2.gap)} points).
- **C3** \`lstm-kt-rbm\` or \`lstm-layerwise-kt\` beats \`lstm-kt\`: ${c3a.verdict} for lstm-kt-rbm (gap ${f(c3a.gap)}), ${c3b.verdict} for lstm-layerwise-kt (gap ${f(c3b.gap)}).

"Supported" means the gap exceeds one pooled standard deviation over seeds (at least 0.5 points);
with few seeds and a small test speaker, read "inconclusive" literally.

![learning curves](learning-curves.svg)

![error rate per system](error-rates.svg)

Configuration:

\`\`\`json
${JSON.stringify(r.config, null, 1)}
\`\`\`
`
  writeFileAtomic(join(r.out, 'report.md'), md)
}
