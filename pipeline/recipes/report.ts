import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import * as vega from 'vega'
import * as vegaLite from 'vega-lite'
import { writeFileAtomic } from '../io/atomic-file.js'
import { type Paired, type Verdict, pairedInterval, verdict } from './paired.js'

/**
 * A recipe's results: `results.json` (machine-readable, the format issue 7 fixes) and `report.md`
 * made from it — what the test set is, what each system is, the error rate per fold and pooled
 * over folds × seeds, the decoder settings tuned on dev, each of the paper's claims read as a
 * paired comparison with a 95 % interval (paired.ts), and SVG plots made with vega-lite
 * (learning curves; error rate per system with ±1 sd over folds × seeds).
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

/** One system of one seed on one fold, as its evaluation (eval/ID.json) gives it. */
interface Row {
  fold: string
  name: string
  seed: number
  value: number
  frame_accuracy: number
  dev_value: number
  acoustic_scale: number
  insertion_penalty: number
  test_words: number
  test_utterances: number
}

interface Summary {
  name: string
  mean: number
  /** Standard deviation over folds × seeds; null with one run (there is no spread to show). */
  sd: number | null
  n: number
  frame_accuracy: number
}

const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / Math.max(1, xs.length)
const sdOf = (xs: number[]) =>
  xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)) : null

export function summarise(rows: Row[], systems: string[]): Summary[] {
  return systems
    .map((name) => {
      const xs = rows.filter((r) => r.name === name)
      const v = xs.map((r) => r.value)
      return { name, mean: mean(v), sd: sdOf(v), n: xs.length, frame_accuracy: mean(xs.map((r) => r.frame_accuracy)) }
    })
    .filter((s) => s.n > 0)
}

/** The paper's claims: "a beats b", each read on the paired per-(fold, seed) differences a − b. */
export const CLAIMS = [
  {
    id: 'C1',
    a: 'lstm-kt',
    b: 'lstm-baseline',
    text: 'KT pre-training beats training the same LSTM on hard labels alone',
  },
  { id: 'C2', a: 'lstm-kt', b: 'dnn', text: 'the KT student beats its own DNN teacher' },
  { id: 'C3a', a: 'lstm-kt-rbm', b: 'lstm-kt', text: 'a teacher with RBM pre-training makes a better student' },
  { id: 'C3b', a: 'lstm-layerwise-kt', b: 'lstm-kt', text: 'layer-wise KT beats whole-network KT' },
] as const

interface ClaimReading {
  id: string
  a: string
  b: string
  text: string
  /** a − b per (fold, seed): error-rate points (below 0 favours the claim). */
  diffs: { fold: string; seed: number; value: number; frame_accuracy: number }[]
  value: Paired & { verdict: Verdict }
  /** The same on test frame accuracy (above 0 favours the claim). */
  frame_accuracy: Paired & { verdict: Verdict }
}

export function readClaims(rows: Row[]): ClaimReading[] {
  return CLAIMS.map((c) => {
    const diffs: ClaimReading['diffs'] = []
    for (const a of rows.filter((r) => r.name === c.a)) {
      const b = rows.find((r) => r.name === c.b && r.fold === a.fold && r.seed === a.seed)
      if (b)
        diffs.push({
          fold: a.fold,
          seed: a.seed,
          value: a.value - b.value,
          frame_accuracy: a.frame_accuracy - b.frame_accuracy,
        })
    }
    const v = pairedInterval(diffs.map((d) => d.value))
    const fa = pairedInterval(diffs.map((d) => d.frame_accuracy))
    return {
      ...c,
      diffs,
      value: { ...v, verdict: verdict(v, 'negative') },
      frame_accuracy: { ...fa, verdict: verdict(fa, 'positive') },
    }
  })
}

export async function renderSvg(spec: vegaLite.TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' })
  return view.toSVG()
}

type CurvePoint = { system: string; run: string; phase: string; step: number; accuracy: number }

function learningCurves(folds: { name: string; dir: string }[], systems: string[], seeds: number[]): CurvePoint[] {
  const pts: CurvePoint[] = []
  for (const fold of folds) {
    for (const system of systems) {
      for (const seed of seeds) {
        const log = join(fold.dir, 'exp', `${system}.s${seed}`, 'train.jsonl')
        if (!existsSync(log)) continue
        let step = 0
        for (const line of readFileSync(log, 'utf8').split('\n')) {
          if (!line.trim()) continue
          const r = JSON.parse(line) as { phase?: string; heldout_accuracy?: number }
          if (r.heldout_accuracy === undefined) continue
          const run = `${fold.name}.s${seed}`
          pts.push({ system, run, phase: r.phase ?? '', step: ++step, accuracy: r.heldout_accuracy })
        }
      }
    }
  }
  return pts
}

/** Speakers of a data dir (its utt2spk), sorted; none when it is not there. */
function speakersOf(dataDir: string): string[] {
  const p = join(dataDir, 'utt2spk')
  if (!existsSync(p)) return []
  const spk = readFileSync(p, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(/\s+/)[1])
  return [...new Set(spk)].sort()
}

function readRows(folds: { name: string; dir: string }[], systems: string[], seeds: number[]): Row[] {
  const rows: Row[] = []
  for (const fold of folds) {
    for (const name of systems) {
      for (const seed of seeds) {
        const p = join(fold.dir, 'eval', `${name}.s${seed}.json`)
        if (!existsSync(p)) continue
        const e = JSON.parse(readFileSync(p, 'utf8')) as Omit<Row, 'fold' | 'name' | 'seed' | 'value' | 'dev_value'> & {
          wer: number
          dev_wer: number
        }
        rows.push({
          fold: fold.name,
          name,
          seed,
          value: e.wer,
          frame_accuracy: e.frame_accuracy,
          dev_value: e.dev_wer,
          acoustic_scale: e.acoustic_scale,
          insertion_penalty: e.insertion_penalty,
          test_words: e.test_words,
          test_utterances: e.test_utterances,
        })
      }
    }
  }
  return rows
}

/** One line on what each system is, from the configuration the run used. */
function describeSystems(config: unknown): Record<string, string> {
  const c = config as {
    teacher?: { hidden?: number[]; activation?: string; context?: number; rbmEpochs?: number }
    student?: { cells?: number; layers?: number; temperature?: number; alpha?: number; model?: unknown }
    soft?: { topK?: number }
  }
  const t = c.teacher ?? {}
  const s = c.student ?? {}
  const dnn = `DNN (hidden ${JSON.stringify(t.hidden)}, ${t.activation}, ±${t.context} frames of context)`
  const lstm = s.model ? `student ${JSON.stringify(s.model)}` : `LSTM student (${s.layers} × ${s.cells} cells)`
  const soft = `top-${c.soft?.topK} soft targets at T = ${s.temperature}`
  return {
    dnn: `${dnn} trained on the frame labels from random initialisation; the teacher of lstm-kt, lstm-regularise, lstm-layerwise-kt`,
    'dnn-rbm': `the same DNN, its layers first pre-trained as RBMs (${t.rbmEpochs} epoch(s) each); the teacher of lstm-kt-rbm`,
    'lstm-baseline': `${lstm} trained on the frame labels alone (no teacher)`,
    'lstm-kt': `${lstm} pre-trained by knowledge transfer from dnn (${soft}), then fine-tuned on the frame labels`,
    'lstm-kt-rbm': `as lstm-kt, from the teacher dnn-rbm`,
    'lstm-regularise': `${lstm} trained on the frame labels with dnn's soft targets as a regulariser (alpha ${s.alpha})`,
    'lstm-layerwise-kt': `${lstm} pre-trained layer by layer by knowledge transfer from dnn, then fine-tuned`,
  }
}

const f2 = (x: number | null | undefined) => (x !== null && x !== undefined && Number.isFinite(x) ? x.toFixed(2) : '–')
const signed = (x: number) => (x > 0 ? `+${x.toFixed(2)}` : x.toFixed(2))

/** A claim's reading in words, from its paired interval. */
function claimLine(c: ClaimReading, metric: string): string {
  const v = c.value
  const head = `- **${c.id}** \`${c.a}\` beats \`${c.b}\` (${c.text}):`
  if (v.n === 0) return `${head} not measured (no fold and seed has both systems).`
  const pairs = c.diffs.map((d) => `${d.fold}.s${d.seed} ${signed(d.value)}`).join(', ')
  if (v.lo === null)
    return `${head} **inconclusive** — one pair: no interval. ${c.a} − ${c.b} = ${signed(v.mean)} ${metric} points (${pairs}); one fold and one seed cannot tell this from noise.`
  const fa = c.frame_accuracy
  const reading =
    v.verdict === 'supported'
      ? `the interval lies below 0: ${c.a} has the lower ${metric}`
      : v.verdict === 'contradicted'
        ? `the interval lies above 0: ${c.a} has the *higher* ${metric}, against the claim`
        : 'the interval contains 0: no difference shown'
  return `${head} **${v.verdict}** — ${c.a} − ${c.b} = ${signed(v.mean)} ${metric} points, 95 % interval [${f2(v.lo)}, ${f2(v.hi)}], sd ${f2(v.sd)}, n = ${v.n} pairs; ${reading}. Minimum detectable effect at this n: ${f2(v.mde)} points. Frame accuracy: ${signed(fa.mean)} points [${f2(fa.lo)}, ${f2(fa.hi)}] (${fa.verdict}). Pairs: ${pairs}.`
}

export async function writeReport(r: ReportInput): Promise<void> {
  const folds = r.folds ?? [{ name: 'split', dir: r.out }]
  const rows = readRows(folds, r.systems, r.seeds)
  const summary = summarise(rows, r.systems)
  const claims = readClaims(rows)
  const unit = r.metric === 'PER' ? 'phones' : 'words'
  const foldInfo = folds.map((f) => {
    const any = rows.find((x) => x.fold === f.name)
    return {
      name: f.name,
      test_speakers: speakersOf(join(f.dir, 'data', 'test')),
      dev_speakers: speakersOf(join(f.dir, 'data', 'dev')),
      train_speakers: speakersOf(join(f.dir, 'data', 'train')),
      test_utterances: any?.test_utterances ?? null,
      test_units: any?.test_words ?? null,
    }
  })
  const results = {
    task: r.task,
    metric: r.metric,
    unit,
    seeds: r.seeds,
    folds: foldInfo,
    systems: rows,
    summary,
    claims,
    method:
      'paired differences a − b per (fold, seed); mean ± t(0.975, n−1)·sd/√n (Student t); minimum detectable effect (t(0.975, n−1) + t(0.8, n−1))·sd/√n; supported only when the interval excludes 0 in the claimed direction',
  }
  writeFileAtomic(join(r.out, 'results.json'), `${JSON.stringify(results, null, 1)}\n`)

  const curves = learningCurves(folds, r.systems, r.seeds)
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
        detail: { field: 'run', type: 'nominal' },
      },
    }),
  )
  // one y title on both layers: vega-lite joins different ones ("test WER (%), lo") and cut it
  const yTitle = `test ${r.metric} (%)`
  writeFileAtomic(
    join(r.out, 'error-rates.svg'),
    await renderSvg({
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      width: 420,
      height: 240,
      data: {
        values: summary.map((s) => ({ ...s, lo: s.mean - (s.sd ?? 0), hi: s.mean + (s.sd ?? 0) })),
      },
      layer: [
        {
          mark: 'bar',
          encoding: {
            x: { field: 'name', type: 'nominal', sort: r.systems, title: 'system' },
            y: { field: 'mean', type: 'quantitative', title: yTitle },
          },
        },
        {
          mark: { type: 'errorbar' },
          transform: [{ filter: 'datum.sd !== null' }],
          encoding: {
            x: { field: 'name', type: 'nominal', sort: r.systems },
            y: { field: 'lo', type: 'quantitative', title: yTitle },
            y2: { field: 'hi' },
          },
        },
      ],
    }),
  )

  const desc = describeSystems(r.config)
  const cell = (fold: string, name: string) => {
    const xs = rows.filter((x) => x.fold === fold && x.name === name)
    if (!xs.length) return '–'
    return `${f2(mean(xs.map((x) => x.value)))} / ${f2(mean(xs.map((x) => x.frame_accuracy)))}`
  }
  const foldTable = [
    `| system | ${folds.map((f) => f.name).join(' | ')} |`,
    `|---|${folds.map(() => '---').join('|')}|`,
    ...summary.map((s) => `| ${s.name} | ${folds.map((f) => cell(f.name, s.name)).join(' | ')} |`),
  ].join('\n')
  const pooled = [
    `| system | ${r.metric} mean (%) | sd | runs (folds × seeds) | test frame accuracy (%) |`,
    '|---|---|---|---|---|',
    ...summary.map(
      (s) =>
        `| ${s.name} | ${f2(s.mean)} | ${s.sd === null ? 'one run: none' : f2(s.sd)} | ${s.n} | ${f2(s.frame_accuracy)} |`,
    ),
  ].join('\n')
  const decoderTable = [
    '| system | acoustic scale / insertion penalty, per fold.seed |',
    '|---|---|',
    ...summary.map(
      (s) =>
        `| ${s.name} | ${rows
          .filter((x) => x.name === s.name)
          .map((x) => `${x.fold}.s${x.seed}: ${x.acoustic_scale} / ${x.insertion_penalty}`)
          .join(', ')} |`,
    ),
  ].join('\n')
  const totalUtts = foldInfo.reduce((a, f) => a + (f.test_utterances ?? 0), 0)
  const totalUnits = foldInfo.reduce((a, f) => a + (f.test_units ?? 0), 0)
  const testSpeakers = [...new Set(foldInfo.flatMap((f) => f.test_speakers))]
  const testSet = foldInfo
    .map(
      (f) =>
        `- ${f.name}: test ${f.test_speakers.join(', ') || '?'} (${f.test_utterances ?? '?'} utterances, ${f.test_units ?? '?'} ${unit}); dev ${f.dev_speakers.join(', ') || '?'}; train ${f.train_speakers.join(', ') || '?'}`,
    )
    .join('\n')
  const boundaries = folds
    .map((f) => join(f.dir, 'boundaries.json'))
    .filter((p) => existsSync(p))
    .map((p) => JSON.parse(readFileSync(p, 'utf8')) as { fraction: number; tolerance_s: number; boundaries: number })
  const md = `# ${r.task}: results

Metric: ${r.metric} on held-out test speakers, decoding tuned on held-out dev speakers (never on test); ${folds.length > 1 || r.folds ? `${folds.length} fold(s) × ` : ''}seeds ${r.seeds.join(', ')}.

## Test set

The results rest on ${testSpeakers.length} test speaker(s), ${totalUtts} utterances and ${totalUnits} ${unit} in all${folds.length > 1 ? ' (each fold scores its own test speaker(s))' : ''}:

${testSet}
${boundaries.length ? `\nAlignment: ${boundaries.map((b) => `${(100 * b.fraction).toFixed(1)}%`).join(', ')} of the true digit boundaries within ${1000 * boundaries[0].tolerance_s} ms after realignment (per fold).\n` : ''}
## Systems

${summary.map((s) => `- \`${s.name}\`: ${desc[s.name] ?? ''}`).join('\n')}

## ${r.metric} (%) / test frame accuracy (%) per fold${r.seeds.length > 1 ? ` (mean of ${r.seeds.length} seeds)` : ''}

${foldTable}

## Pooled over folds × seeds

${pooled}

## The paper's claims, read on this run

Each claim "a beats b" is read on the paired differences a − b of test ${r.metric} (one per fold and seed: both
systems trained and scored on the same split with the same seed). Shown: their mean, a 95 % Student-t interval
(mean ± t₀.₉₇₅,ₙ₋₁ · sd/√n), and the minimum detectable effect at that n, (t₀.₉₇₅,ₙ₋₁ + t₀.₈,ₙ₋₁) · sd/√n (the
smallest true difference this many pairs would detect with 80 % power at the two-sided 5 % level). "Supported"
only when the interval excludes 0 in the claimed direction (a lower ${r.metric}); "contradicted" when it excludes
0 the other way; "inconclusive" otherwise, and always with a single pair.

${claims.map((c) => claimLine(c, r.metric)).join('\n')}

## Decoder settings tuned on dev

${decoderTable}

![learning curves](learning-curves.svg)

![error rate per system](error-rates.svg)

Configuration${r.folds ? ' (each fold replaces the test and dev speakers)' : ''}:

\`\`\`json
${JSON.stringify(r.config, null, 1)}
\`\`\`
`
  writeFileAtomic(join(r.out, 'report.md'), md)
}
