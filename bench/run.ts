/**
 * The benchmark harness: `npm run bench [-- NAME…] [--json] [--quick] [--no-reference]`.
 *
 * Runs the named benchmarks (default: all, in the order below) and prints one JSON line per result
 * on stdout: {name, ktp, reference, unit, ratio, ...extra}; `ratio` > 1 means ktp is ahead. Without
 * --json a human-readable table follows on stderr, with progress notes as the benchmarks run. Each
 * ktp/reference pair runs back to back, because the machine may be shared: the ratios are the
 * signal, the absolute figures drift with the load. Every benchmark runs in a fresh process of its
 * own (this file again, with KTP_BENCH_CHILD set; train-dnn and train-lstm share one): a figure must
 * not depend on which benchmarks ran before it in the same heap. In one process, soft-read after
 * infer ran up to 1.7x slower than alone (issue 16).
 *
 *   features    fbank, 40 bins, all FSDD recordings: ktp vs torchaudio, one thread each
 *   train-dnn   DNN 440-4×512-1000 training step (bench/engine.ts) vs PyTorch
 *   train-lstm  LSTM 40→256→1000 chunked training step (bench/engine.ts) vs PyTorch
 *   infer       ktp infer → top-32 f16 soft targets vs the same forward in PyTorch
 *   soft-read   soft-target files → a student's training batches at T = 2, sparse for top-k (frames/s, bytes/frame)
 *   gemm        float32 matrix products of the train/infer shapes: tfjs-wasm vs torch.mm, 1 thread (GFLOP/CPU-s; a limit, no goal)
 *   memory      peak RSS of features | cmvn | splice | infer over FSDD ×1, ×4, ×16
 *   decode      real-time factor of ktp decode on connected FSDD digits
 *   twin        ktp's seven systems beside a PyTorch twin (bench/twin.ts): test frame accuracy and
 *               held-out accuracy per epoch; only when named (it trains everything twice), with
 *               [--data DIR] [--seeds N] [--folds K] [--set KEY=VALUE …] passed to `ktp run` and the twin
 *
 * Python references need /usr/bin/python3 with torch and torchaudio (Debian:
 * apt-get install python3-torch python3-torchaudio libopenblas0-pthread); without them, the pairs
 * are reported without a reference (or skipped where ktp's side cannot run alone).
 */
import { spawnSync } from 'node:child_process'
import { pathToFileURL } from 'node:url'
import { type BenchLine, type HarnessOptions, PYTHON_INSTALL_HINT, pythonReference } from './common.js'
import type { TwinOptions } from './twin.js'

export const BENCHMARKS = [
  'features',
  'train-dnn',
  'train-lstm',
  'infer',
  'soft-read',
  'gemm',
  'memory',
  'decode',
  'twin',
] as const
/** Run only when named: they train whole recipes. */
const ON_REQUEST: readonly string[] = ['twin']
export type BenchName = (typeof BENCHMARKS)[number]

const UNITS: Record<BenchName, string> = {
  features: 'frames/s',
  'train-dnn': 'frames/s',
  'train-lstm': 'frames/s',
  infer: 'frames/s',
  'soft-read': 'frames/s',
  gemm: 'GFLOP/CPU-s',
  memory: 'bytes',
  decode: 'RTF',
  twin: 'test frame accuracy %',
}

function unavailable(name: BenchName, why: string): BenchLine {
  return { name, ktp: null, reference: null, unit: UNITS[name], ratio: null, note: `not available: ${why}` }
}

async function runFeatures(h: HarnessOptions): Promise<BenchLine[]> {
  const py = pythonReference()
  if (h.reference && !py.ok)
    h.log(`features: torchaudio reference skipped: ${py.detail}; install: ${PYTHON_INSTALL_HINT}`)
  return (await import('./features.js')).benchFeatures({ ...h, reference: h.reference && py.ok })
}

async function runEngine(h: HarnessOptions, which: BenchName[]): Promise<BenchLine[]> {
  let mod: Record<string, unknown>
  try {
    mod = (await import('./engine.js')) as Record<string, unknown>
  } catch (e) {
    return which.map((n) => unavailable(n, `bench/engine.ts did not load (${(e as Error).message})`))
  }
  if (typeof mod.benchEngine !== 'function')
    return which.map((n) => unavailable(n, 'bench/engine.ts exports no benchEngine()'))
  const py = pythonReference()
  if (h.reference && !py.ok)
    h.log(`train-*: PyTorch reference skipped: ${py.detail}; install it with: ${PYTHON_INSTALL_HINT}`)
  const benchEngine = mod.benchEngine as (o: Record<string, unknown>) => Promise<BenchLine[]>
  const res = await benchEngine({
    reference: h.reference && py.ok,
    log: h.log,
    ...(h.quick ? { steps: 1, reps: 1 } : {}),
    ...(h.reps ? { reps: h.reps } : {}),
  })
  return res.filter((r) => which.includes(r.name as BenchName)).map((r) => ({ ...r }))
}

async function runOne(name: BenchName, h: HarnessOptions, twin: TwinOptions): Promise<BenchLine[]> {
  switch (name) {
    case 'features':
      return runFeatures(h)
    case 'infer':
      return (await import('./infer.js')).benchInfer(h)
    case 'soft-read':
      return (await import('./soft-read.js')).benchSoftRead(h)
    case 'gemm': {
      const py = pythonReference()
      if (h.reference && !py.ok) h.log(`gemm: PyTorch reference skipped: ${py.detail}; install: ${PYTHON_INSTALL_HINT}`)
      return (await import('./gemm.js')).benchGemm({ ...h, reference: h.reference && py.ok })
    }
    case 'memory':
      return (await import('./memory.js')).benchMemory(h)
    case 'decode':
      return (await import('./decode.js')).benchDecode(h)
    case 'twin':
      return (await import('./twin.js')).benchTwin(h, twin)
    default:
      throw new Error(`unknown benchmark ${name}`)
  }
}

function fmt(x: unknown): string {
  if (typeof x !== 'number' || !Number.isFinite(x)) return x == null ? '—' : String(x)
  if (Math.abs(x) >= 1e6) return `${(x / 1e6).toFixed(2)}M`
  if (Math.abs(x) >= 1e4) return `${(x / 1e3).toFixed(1)}k`
  if (Math.abs(x) >= 100) return x.toFixed(0)
  return x.toPrecision(3)
}

/** The human table (stderr). */
export function table(lines: BenchLine[]): string {
  const rows = [['benchmark', 'ktp', 'reference', 'unit', 'ratio', 'note']]
  for (const l of lines) {
    const variant = [l.variant, l.storage, l.scale != null ? `×${String(l.scale)}` : null].filter(Boolean).join(' ')
    const note = (l.error ? `error: ${String(l.error)}` : (l.note ?? l.reference_note ?? '')) as string
    rows.push([
      variant ? `${l.name} ${variant}` : l.name,
      fmt(l.ktp),
      fmt(l.reference),
      l.unit,
      l.ratio == null ? '—' : `${fmt(l.ratio)}×`,
      note.slice(0, 90),
    ])
  }
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)))
  return `${rows
    .map((r) =>
      r
        .map((v, c) => (c === 0 || c === 3 || c === 5 ? v.padEnd(w[c]) : v.padStart(w[c])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`
}

export interface RunArgs {
  names: BenchName[]
  json: boolean
  quick: boolean
  reference: boolean
  twin: TwinOptions
  reps?: number
  /** argv without the benchmark names: what a child process is given again (runInChild). */
  options: string[]
}

export function parseArgs(argv: string[]): RunArgs {
  const names: BenchName[] = []
  let json = false
  let quick = false
  let reference = true
  let reps: number | undefined
  const twin: TwinOptions = { sets: [] }
  const options: string[] = []
  const value = (i: number, flag: string) => {
    const v = argv[i + 1]
    if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value`, 2)
    // a flag's value is kept even when it spells a benchmark (`--data features`)
    options.push(flag, v)
    return v
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--data') twin.data = value(i++, a)
    else if (a === '--seeds') {
      twin.seeds = Number(value(i++, a))
      if (!Number.isInteger(twin.seeds) || twin.seeds < 1)
        throw new UsageError(`--seeds: expected a whole number ≥ 1, got '${argv[i]}'`, 2)
    } else if (a === '--folds') {
      twin.folds = Number(value(i++, a))
      if (!Number.isInteger(twin.folds) || twin.folds < 1)
        throw new UsageError(`--folds: expected a whole number of folds ≥ 1, got '${argv[i]}'`, 2)
    } else if (a === '--set') twin.sets.push(value(i++, a))
    else if (a === '--out') twin.out = value(i++, a)
    else if (
      a === '--json' ||
      a === '--quick' ||
      a === '--no-reference' ||
      (/^--reps=\d+$/.test(a) && Number(a.slice(7)) > 0)
    ) {
      options.push(a)
      if (a === '--json') json = true
      else if (a === '--quick') quick = true
      else if (a === '--no-reference') reference = false
      else reps = Number(a.slice(7))
    } else if (a === '--help' || a === '-h') {
      throw new UsageError(
        `usage: npm run bench [-- NAME…] [--json] [--quick] [--no-reference]\n  NAME: ${BENCHMARKS.join(', ')} (default: all)\n` +
          '  --json          only the JSON lines (stdout), no table or progress on stderr\n' +
          '  --quick         small sizes (a smoke run; the figures mean nothing)\n' +
          '  --no-reference  skip the Python/PyTorch references\n' +
          '  --reps=N        interleaved repetitions per side (features, train-*, infer; default 3), timed runs per figure (soft-read)\n' +
          '  twin only (run when named): --data DIR (corpus), --seeds N, --folds K (speaker cross-validation),\n' +
          '                  --set KEY=VALUE (repeatable), --out DIR (the ktp run)\n',
        0,
      )
    } else if ((BENCHMARKS as readonly string[]).includes(a)) {
      if (!names.includes(a as BenchName)) names.push(a as BenchName)
    } else {
      throw new UsageError(
        `unknown benchmark or option '${a}'; expected one of ${BENCHMARKS.join(', ')}, --json, --quick, --no-reference`,
        2,
      )
    }
  }
  return {
    names: names.length
      ? BENCHMARKS.filter((n) => names.includes(n))
      : BENCHMARKS.filter((n) => !ON_REQUEST.includes(n)),
    json,
    quick,
    reference,
    twin,
    reps,
    options,
  }
}

class UsageError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message)
  }
}

/** The lines of one benchmark (or of train-dnn and train-lstm, one engine run) in this process. */
async function runHere(
  name: BenchName,
  group: BenchName[],
  h: HarnessOptions,
  twin: TwinOptions,
): Promise<BenchLine[]> {
  try {
    return group.length > 1 || name === 'train-dnn' || name === 'train-lstm'
      ? await runEngine(h, group)
      : await runOne(name, h, twin)
  } catch (e) {
    return group.map((n) => ({
      name: n,
      ktp: null,
      reference: null,
      unit: UNITS[n],
      ratio: null,
      error: (e as Error).message.slice(0, 2000),
    }))
  }
}

/**
 * The same benchmarks in a child process of their own: this script with the same options, only
 * `group` named. Its JSON lines come back on stdout; its progress (stderr) goes straight through.
 */
function runInChild(group: BenchName[], options: string[]): BenchLine[] {
  const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1], ...group, ...options], {
    env: { ...process.env, KTP_BENCH_CHILD: '1' },
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  })
  const lines: BenchLine[] = []
  for (const l of r.stdout.split('\n')) {
    if (!l.startsWith('{')) continue
    try {
      lines.push(JSON.parse(l) as BenchLine)
    } catch {
      // a line cut short by the child's death: its benchmark gets the error line below
    }
  }
  const got = new Set(lines.map((l) => l.name))
  const why = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `exit status ${r.status}`
  // a child that died before reporting a benchmark still gets its line: an error, not a gap
  for (const n of group)
    if (!got.has(n))
      lines.push({
        name: n,
        ktp: null,
        reference: null,
        unit: UNITS[n],
        ratio: null,
        error: `the benchmark process ended (${why}) without a result`,
      })
  return lines
}

export async function main(argv: string[]): Promise<number> {
  let args: RunArgs
  try {
    args = parseArgs(argv)
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${e.message}\n`)
      return e.code
    }
    throw e
  }
  const log = args.json ? () => {} : (l: string) => process.stderr.write(`# ${l}\n`)
  const h: HarnessOptions = { quick: args.quick, reference: args.reference, reps: args.reps, log, json: args.json }
  if (args.reference) {
    const py = pythonReference()
    log(
      py.ok
        ? `Python reference: /usr/bin/python3, ${py.detail}`
        : `Python reference unavailable (${py.detail}); install: ${PYTHON_INSTALL_HINT}`,
    )
  }
  const all: BenchLine[] = []
  let failed = 0
  const emit = (l: BenchLine) => {
    all.push(l)
    if (l.error !== undefined) failed++
    process.stdout.write(`${JSON.stringify(l)}\n`)
  }
  const child = process.env.KTP_BENCH_CHILD === '1'
  const engineNames = args.names.filter((n) => n === 'train-dnn' || n === 'train-lstm')
  for (const name of args.names) {
    if (name === 'train-lstm' && engineNames.includes('train-dnn')) continue // one engine run makes both
    const group = name === 'train-dnn' || name === 'train-lstm' ? engineNames : [name]
    const t0 = Date.now()
    log(`${name}: running`)
    const lines = child ? await runHere(name, group, h, args.twin) : runInChild(group, args.options)
    for (const l of lines) emit(l)
    log(`${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  }
  if (child) return failed ? 1 : 0
  if (!args.json) process.stderr.write(`\n${table(all)}`)
  return failed ? 1 : 0
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (e: unknown) => {
      process.stderr.write(`bench failed: ${(e as Error)?.stack ?? String(e)}\n`)
      process.exitCode = 2
    },
  )
}
