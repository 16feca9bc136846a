/**
 * `npm run bench -- twin [--quick] [--json] [--data DIR] [--seeds N] [--set KEY=VALUE …]`: ktp's
 * seven systems beside a PyTorch twin of them (bench/twin.py, issue 15).
 *
 * 1. `ktp run fsdd` (or `ktp run timit` when DIR is a TIMIT-layout corpus) with the same options:
 *    its data side (features, CMVN, ktp's own alignment of the connected-digit states) and every
 *    system, per seed. The run directory is kept under the system temp dir, named by the options, so
 *    a second call finds it up to date.
 * 2. Its CMVN'd features and frame labels, per split, as Kaldi text (`ktp cat --format kaldi-text`).
 * 3. bench/twin.py on them, once per seed, with the same resolved recipe config.
 *
 * One JSON line per system: {name: 'twin', variant, ktp, reference, seeds, unit, ratio, …}, with
 * `ktp` and `reference` the test frame accuracy (%) of ktp and of the twin, mean over seeds, and
 * per seed the held-out (dev) frame accuracy of every epoch, side by side.
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { foldOut } from '../pipeline/recipes/folds.js'
import { pairedInterval } from '../pipeline/recipes/paired.js'
import { configureRecipe } from '../pipeline/recipes/select.js'
import { type Prepared, SYSTEMS } from '../pipeline/recipes/systems.js'
import type { SystemsConfig } from '../pipeline/recipes/systems-config.js'
import { type BenchLine, type HarnessOptions, PYTHON, projectRoot, round } from './common.js'

export interface TwinOptions {
  /** Corpus folder (default: the bundled FSDD copy of `ktp run fsdd`). */
  data?: string
  seeds?: number
  /** `--set KEY=VALUE` overrides, passed to `ktp run` and to the twin alike. */
  sets: string[]
  /** The `ktp run` output directory (default: one under the system temp dir named by the options). */
  out?: string
  /**
   * `--folds K`: `ktp run … --folds K` (speaker cross-validation), and the twin on every fold, so
   * that each system's ktp − twin difference rests on K folds × seeds paired runs, not on one
   * test speaker.
   */
  folds?: number
}

/** One ktp run directory the twin is compared on: the whole run, or one fold of it. */
export interface Unit {
  /** '' for a run without folds, else the fold's name (fold-<speaker>). */
  name: string
  dir: string
  config: SystemsConfig
  prep: Prepared
}

interface EpochRec {
  phase: string
  epoch: number
  heldout_accuracy: number
  accepted: boolean
}

interface TwinResult {
  system: string
  seed: number
  test_frame_accuracy: number
  epochs: EpochRec[]
  seconds: number
}

const isTimit = (dir: string | undefined) =>
  dir !== undefined && ['TRAIN', 'train', 'TEST', 'test'].some((s) => existsSync(join(dir, s)))

function ktpCli(args: string[], log: (l: string) => void): string {
  const cli = join(projectRoot(), 'dist', 'pipeline', 'cli', 'main.js')
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', maxBuffer: 1 << 30 })
  if (r.status !== 0) throw new Error(`ktp ${args.join(' ')} exited ${r.status}: ${r.stderr.trim().slice(-1500)}`)
  if (args[0] === 'run') log(r.stderr.trim().split('\n').slice(-3).join(' | '))
  return r.stdout
}

/** Held-out accuracy per epoch of one ktp model (its train.jsonl epoch records). */
function ktpEpochs(dir: string): EpochRec[] {
  const p = join(dir, 'train.jsonl')
  if (!existsSync(p)) return []
  return readFileSync(p, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as EpochRec & { lr?: number })
    .filter((r) => r.heldout_accuracy !== undefined && r.lr !== undefined)
    .map(({ phase, epoch, heldout_accuracy, accepted }) => ({ phase, epoch, heldout_accuracy, accepted }))
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
const sd = (xs: number[]) =>
  xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / (xs.length - 1))

export async function benchTwin(h: HarnessOptions, o: TwinOptions): Promise<BenchLine[]> {
  const timit = isTimit(o.data)
  const recipe = timit ? 'timit' : 'fsdd'
  // the configuration `ktp run` itself resolves from the same options
  const configured = configureRecipe(recipe, { quick: h.quick, set: o.sets, seeds: o.seeds, data: o.data })
  const cfg = configured.config
  const key = createHash('sha256')
    .update(JSON.stringify([recipe, h.quick, o.data ?? '', o.seeds ?? 0, o.sets, ...(o.folds ? [o.folds] : [])]))
    .digest('hex')
    .slice(0, 10)
  const out = o.out ?? join(tmpdir(), `ktp-twin-${recipe}-${h.quick ? 'quick' : 'full'}-${key}`)
  mkdirSync(out, { recursive: true })

  // 1. ktp: the whole recipe (up to date on a second call)
  h.log(`twin: ktp run ${recipe} → ${out}`)
  ktpCli(
    [
      ...['run', recipe, '--out', out, ...(h.quick ? ['--quick'] : [])],
      ...(o.data ? ['--data', o.data] : []),
      ...(o.seeds ? ['--seeds', String(o.seeds)] : []),
      ...(o.folds ? ['--folds', String(o.folds)] : []),
      ...o.sets.flatMap((s) => ['--set', s]),
    ],
    h.log,
  )
  const corpus = configured.data()
  const units: Unit[] = o.folds
    ? configured.folds(corpus, o.folds).map((fold) => {
        const dir = foldOut(out, fold)
        return { name: fold.name, dir, ...configured.prepFold(corpus, dir, fold) }
      })
    : [{ name: '', dir: out, config: cfg, prep: configured.prep(corpus, out) }]

  // 2–3. per run directory: its data as Kaldi text, and the twin once per seed
  const twin = new Map<string, TwinResult[]>()
  for (const u of units) twin.set(u.name, runTwin(h, u))

  // 4. side by side: every (fold, seed) is one pair
  const lines: BenchLine[] = []
  for (const system of SYSTEMS) {
    const perSeed = units.flatMap((u) =>
      u.config.seeds.map((seed) => {
        const id = `${system}.s${seed}`
        const ev = JSON.parse(readFileSync(join(u.dir, 'eval', `${id}.json`), 'utf8')) as { frame_accuracy: number }
        const tw = twin.get(u.name)!.find((t) => t.system === system && t.seed === seed)
        return {
          fold: u.name,
          seed,
          ktp: ev.frame_accuracy,
          reference: tw?.test_frame_accuracy ?? Number.NaN,
          epochs: { ktp: ktpEpochs(join(u.dir, 'exp', id)), reference: tw?.epochs ?? [] },
        }
      }),
    )
    const k = perSeed.map((s) => s.ktp)
    const r = perSeed.map((s) => s.reference)
    const paired = pairedInterval(perSeed.map((s) => s.ktp - s.reference))
    lines.push({
      name: 'twin',
      variant: system,
      ktp: round(mean(k)),
      reference: round(mean(r)),
      seeds: cfg.seeds.length,
      folds: o.folds ?? 1,
      unit: 'test frame accuracy %',
      ratio: round(mean(k) / mean(r)),
      diff: round(mean(k) - mean(r)),
      diff_ci95: paired.lo === null || paired.hi === null ? null : [round(paired.lo), round(paired.hi)],
      ktp_sd: round(sd(k)),
      reference_sd: round(sd(r)),
      goal: h.quick ? '|diff| <= 2' : '|diff| <= 1',
      recipe,
      config: h.quick ? 'quick' : 'full',
      sets: o.sets,
      per_seed: perSeed.map((s) => ({
        ...(s.fold ? { fold: s.fold } : {}),
        seed: s.seed,
        ktp: round(s.ktp),
        reference: round(s.reference),
        heldout: sideBySide(s.epochs.ktp, s.epochs.reference),
      })),
    })
  }
  for (const l of lines) {
    h.log(`${String(l.variant).padEnd(18)} ktp ${l.ktp} twin ${l.reference} (diff ${l.diff})`)
    for (const s of l.per_seed as { fold?: string; seed: number; heldout: string[] }[])
      h.log(`  ${s.fold ? `${s.fold} ` : ''}seed ${s.seed} held-out per epoch (ktp | twin): ${s.heldout.join('  ')}`)
  }
  const dir = join(projectRoot(), 'bench', 'results')
  if (existsSync(dir) || readdirSync(projectRoot()).includes('bench')) {
    mkdirSync(dir, { recursive: true })
    const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)
    const folds = o.folds ? `-folds${o.folds}` : ''
    const file = join(dir, `twin-${recipe}-${h.quick ? 'quick' : 'full'}${folds}-${stamp}.json`)
    writeFileSync(file, `${JSON.stringify({ command: commandOf(h, o), out, lines }, null, 1)}\n`)
    h.log(`twin: raw results in ${file}`)
  }
  return lines
}

/**
 * One run directory's features and labels as Kaldi text (for the twin, which reads no Arrow), and
 * bench/twin.py on them once per seed; both kept in DIR/twin, so a rerun reuses them.
 */
export function runTwin(h: HarnessOptions, u: Unit): TwinResult[] {
  const txt = join(u.dir, 'twin')
  mkdirSync(txt, { recursive: true })
  for (const s of ['train', 'dev', 'test'] as const) {
    const f = join(txt, `${s}.feats.txt`)
    const l = join(txt, `${s}.labels.txt`)
    if (!existsSync(f))
      writeFileSync(f, ktpCli(['cat', u.prep.data.feats[s], '--format', 'kaldi-text', '--quiet'], h.log))
    if (!existsSync(l))
      writeFileSync(l, ktpCli(['cat', u.prep.data.labels[s], '--format', 'kaldi-text', '--quiet'], h.log))
  }
  writeFileSync(join(txt, 'config.json'), JSON.stringify(u.config))
  const model = JSON.parse(readFileSync(join(u.dir, 'exp', `dnn.s${u.config.seeds[0]}`, 'ktp.json'), 'utf8'))
  const classes = (model as { numClasses: number }).numClasses
  const results: TwinResult[] = []
  for (const seed of u.config.seeds) {
    const cached = join(txt, `twin.s${seed}.jsonl`)
    if (!existsSync(cached)) {
      h.log(`twin: bench/twin.py ${u.name ? `${u.name} ` : ''}seed ${seed}`)
      const r = spawnSync(
        PYTHON,
        [
          join(projectRoot(), 'bench', 'twin.py'),
          ...['--dir', txt, '--config', join(txt, 'config.json'), '--classes', String(classes), '--seed', String(seed)],
        ],
        {
          encoding: 'utf8',
          maxBuffer: 1 << 26,
          env: { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1' },
          stdio: ['ignore', 'pipe', h.json ? 'ignore' : 'inherit'],
        },
      )
      if (r.status !== 0) throw new Error(`bench/twin.py ${u.dir} seed ${seed} failed (exit ${r.status})`)
      writeFileSync(cached, r.stdout)
    }
    for (const line of readFileSync(cached, 'utf8').trim().split('\n')) results.push(JSON.parse(line) as TwinResult)
  }
  return results
}

/** "phase epoch: ktp | twin" per epoch index, phases in order (a rejected epoch is marked *). */
function sideBySide(k: EpochRec[], r: EpochRec[]): string[] {
  const f = (e: EpochRec | undefined) => (e ? `${e.heldout_accuracy.toFixed(1)}${e.accepted ? '' : '*'}` : '—')
  const phases = [...new Set([...k, ...r].map((e) => e.phase))]
  const out: string[] = []
  for (const ph of phases) {
    const a = k.filter((e) => e.phase === ph)
    const b = r.filter((e) => e.phase === ph)
    for (let i = 0; i < Math.max(a.length, b.length); i++) out.push(`${ph}${i + 1} ${f(a[i])}|${f(b[i])}`)
  }
  return out
}

function commandOf(h: HarnessOptions, o: TwinOptions): string {
  return [
    'npm run bench -- twin',
    ...(h.quick ? ['--quick'] : []),
    ...(o.data ? ['--data', o.data] : []),
    ...(o.seeds ? ['--seeds', String(o.seeds)] : []),
    ...(o.folds ? ['--folds', String(o.folds)] : []),
    ...o.sets.map((s) => `--set ${s}`),
    ...(o.out ? ['--out', o.out] : []),
  ].join(' ')
}
