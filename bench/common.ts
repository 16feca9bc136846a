/**
 * Shared pieces of the benchmark harness (bench/run.ts): the result line every benchmark emits,
 * the Python reference check, running the ktp CLI as a child process with wall time and peak RSS,
 * and the synthetic inputs (a reference-shaped teacher, random features) several benchmarks use.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs'
import os, { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BatchEncoder } from '../pipeline/io/arrow-encoder.js'
import { makeSchema } from '../schemas/kinds.js'
import { makeUttBatch } from '../schemas/utterance.js'
import { mulberry32 } from '../stages/nn/init.js'

/**
 * One benchmark result, printed as one JSON line. `ratio` is always "how many times ktp is the
 * better": ktp/reference for throughputs (frames/s), reference/ktp for costs (seconds, bytes), so
 * > 1 means ktp is ahead. `reference` is null when there is no reference (or it was skipped).
 */
export interface BenchLine {
  name: string
  ktp: number | null
  reference: number | null
  unit: string
  ratio: number | null
  [extra: string]: unknown
}

/** Options every benchmark takes from the harness. */
export interface HarnessOptions {
  /** Small sizes for a smoke run (seconds, not minutes); figures are then meaningless. */
  quick: boolean
  /** Run the Python references (when available). */
  reference: boolean
  /** Interleaved repetitions per side, where a benchmark takes them (`--reps N`; default: its own). */
  reps?: number
  /** Progress and notes (stderr). */
  log: (line: string) => void
  /** --json: nothing but the JSON lines (so long-running children keep their stderr to themselves). */
  json?: boolean
}

/** The project root, whether this runs from bench/ (ts) or dist/bench/ (js). */
export function projectRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(d, 'package.json')) && dirname(d) !== d) d = dirname(d)
  return d
}

export const ROOT = projectRoot()
export const CLI = join(ROOT, 'dist', 'pipeline', 'cli', 'main.js')
export const PYTHON = '/usr/bin/python3'
export const PYTHON_INSTALL_HINT = 'apt-get install python3-torch python3-torchaudio libopenblas0-pthread'

/** A Python reference script from the source tree (bench/NAME), from bench/ or dist/bench/. */
export function refScript(name: string): string {
  return join(ROOT, 'bench', name)
}

export interface PythonStatus {
  ok: boolean
  /** torch / torchaudio versions, or why the reference cannot run. */
  detail: string
}

let pythonStatus: PythonStatus | null = null
/** Is the Debian Python with torch + torchaudio there? (checked once per run) */
export function pythonReference(): PythonStatus {
  if (pythonStatus) return pythonStatus
  if (!existsSync(PYTHON)) {
    pythonStatus = { ok: false, detail: `${PYTHON} not found` }
  } else {
    const r = spawnSync(
      PYTHON,
      ['-c', 'import torch, torchaudio, numpy; print(torch.__version__, torchaudio.__version__)'],
      { encoding: 'utf8' },
    )
    pythonStatus =
      r.status === 0
        ? { ok: true, detail: `torch ${r.stdout.trim().split(' ')[0]}, torchaudio ${r.stdout.trim().split(' ')[1]}` }
        : {
            ok: false,
            detail: `${PYTHON} lacks torch/torchaudio/numpy (${(r.stderr || String(r.error)).trim().split('\n').pop()})`,
          }
  }
  return pythonStatus
}

/** Run a Python reference script; its last stdout line is JSON. */
export function runPython<T>(script: string, args: string[], env: Record<string, string> = {}): T {
  const r = spawnSync(PYTHON, [refScript(script), ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    env: { ...process.env, ...env },
  })
  if (r.status !== 0)
    throw new Error(`${script} failed (exit ${r.status}): ${(r.stderr || String(r.error)).trim().slice(-2000)}`)
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as T
}

export function tmpDir(prefix = 'ktp-bench-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

export interface ChildResult {
  code: number | null
  seconds: number
  /** Peak resident set size in bytes (from wait4's rusage, via /usr/bin/time when present). */
  maxRssBytes: number | null
  stderr: string
  /** Captured stdout (only with `captureStdout`). */
  stdout: string
}

const TIME = '/usr/bin/time'
export const hasGnuTime = existsSync(TIME)

/**
 * Run a command to completion, measuring wall time and (when GNU time is installed) peak RSS.
 * stdout is discarded unless `captureStdout`.
 */
export function runTimed(
  cmd: string,
  args: string[],
  opts: { cwd?: string; captureStdout?: boolean } = {},
): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const [file, argv] = hasGnuTime ? [TIME, ['-f', 'KTPBENCH_MAXRSS_KB=%M', cmd, ...args]] : [cmd, args]
    const child = spawn(file, argv, {
      cwd: opts.cwd ?? ROOT,
      stdio: ['ignore', opts.captureStdout ? 'pipe' : 'ignore', 'pipe'],
    })
    let stderr = ''
    let stdout = ''
    child.stdout?.setEncoding('utf8')
    child.stdout?.on('data', (d: string) => (stdout += d))
    child.stderr!.setEncoding('utf8')
    child.stderr!.on('data', (d: string) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9
      const m = /KTPBENCH_MAXRSS_KB=(\d+)/.exec(stderr)
      resolve({
        code,
        seconds,
        maxRssBytes: m ? Number(m[1]) * 1024 : null,
        stderr: stderr.replace(/KTPBENCH_MAXRSS_KB=\d+\n?/, ''),
        stdout,
      })
    })
  })
}

/** Run `ktp ARGS` (node dist/pipeline/cli/main.js) and fail with its stderr if it fails. */
export async function ktp(args: string[], opts: { cwd?: string } = {}): Promise<ChildResult> {
  const r = await runTimed(process.execPath, [CLI, ...args], opts)
  if (r.code !== 0) throw new Error(`ktp ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim().slice(-2000)}`)
  return r
}

/** The teacher shape of DESIGN §4: 440 = 40×11 spliced in, 4×512 sigmoid, 1000 out. */
export const TEACHER = { featDim: 40, context: 5, hidden: [512, 512, 512, 512], classes: 1000 }

/**
 * Write a reference-shaped random-weight DNN as a ktp model directory (ktp.json + params.bin), as
 * `ktp train` does (stages/train.ts finishModel). `splice: 'model'` makes a model that splices
 * 40-dim features itself (±5); `splice: 'input'` one that takes already spliced 440-dim frames
 * (for a pipe through `ktp splice --context 5`). Same weights either way (same seed).
 */
export async function writeTeacher(
  dir: string,
  splice: 'model' | 'input',
  o: { hidden?: number[]; classes?: number; seed?: number } = {},
): Promise<void> {
  // loaded here, not at the top: tfjs takes seconds to load and the harness' usage path needs none of it
  const { buildModel } = await import('../stages/nn/index.js')
  const { saveModel } = await import('../stages/train/model-store.js')
  const inDim = TEACHER.featDim * (2 * TEACHER.context + 1)
  const numClasses = o.classes ?? TEACHER.classes
  const model = buildModel({
    model: { type: 'dnn', hidden: o.hidden ?? TEACHER.hidden, activation: 'sigmoid' },
    inputDim: inDim,
    numClasses,
    seed: o.seed ?? 1,
  })
  try {
    saveModel(dir, model, {
      splice: splice === 'model' ? { left: TEACHER.context, right: TEACHER.context } : { left: 0, right: 0 },
      featureDim: splice === 'model' ? TEACHER.featDim : inDim,
      featureFingerprint: null,
      numClasses,
      inventory: null,
      priors: null,
      fingerprint: `bench-teacher-${splice}`,
      build: `bench-teacher-${splice}`,
      training: { stage: 'bench', note: 'random weights (glorot), for benchmarking only' },
    })
  } finally {
    model.params.dispose()
  }
}

/** Utterance lengths (frames) summing to about `total`, deterministic, 150–350 frames each. */
export function uttLengths(total: number, seed = 7): number[] {
  const r = mulberry32(seed)
  const out: number[] = []
  let n = 0
  while (n < total) {
    const f = Math.min(total - n, 150 + Math.floor(r() * 201))
    out.push(f)
    n += f
  }
  return out
}

/**
 * A features@1 file of random frames (uniform in [-1, 1)), plus the same frames as raw float32
 * (`rawPath`, all utterances concatenated) and their lengths (`rawPath`.lens, int32) for Python.
 */
export function writeRandomFeatures(
  path: string,
  lengths: number[],
  dim: number,
  opts: { seed?: number; rawPath?: string } = {},
): number {
  const schema = makeSchema('features', {
    widths: { feats: dim },
    metadata: { 'ktp.fingerprint': 'bench-random-features' },
  })
  const enc = new BatchEncoder(schema, 'file')
  const r = mulberry32(opts.seed ?? 1)
  const parts: Uint8Array[] = [...enc.begin()]
  const raw: Buffer[] = []
  lengths.forEach((frames, i) => {
    const data = new Float32Array(frames * dim)
    for (let j = 0; j < data.length; j++) data[j] = r() * 2 - 1
    if (opts.rawPath) raw.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength))
    parts.push(...enc.encode(makeUttBatch(schema, { utt: `utt${String(i).padStart(6, '0')}`, feats: data })))
  })
  parts.push(...enc.finish())
  writeFileSync(path, Buffer.concat(parts))
  if (opts.rawPath) {
    writeFileSync(opts.rawPath, Buffer.concat(raw))
    writeFileSync(`${opts.rawPath}.lens`, Buffer.from(Int32Array.from(lengths).buffer))
  }
  return lengths.reduce((a, b) => a + b, 0)
}

/** Best of n runs of an async measurement that returns a value to maximise. */
export async function bestOf<T>(n: number, run: () => Promise<T>, score: (t: T) => number): Promise<T> {
  let best: T | null = null
  for (let i = 0; i < n; i++) {
    const t = await run()
    if (best === null || score(t) > score(best)) best = t
  }
  return best as T
}

export const round = (x: number | null, digits = 3): number | null =>
  x == null || !Number.isFinite(x) ? x : Number(x.toPrecision(digits + 1))

// ---------------------------------------------------------------------------------------------
// Fair-harness pieces (issue 16): pinned reference threads, run metadata, interleaved repetitions,
// median and spread of wall and CPU time.

/**
 * Environment for a Python reference that runs `threads` threads: every pool torch may use is
 * pinned (OpenBLAS, OpenMP, MKL); the scripts also call torch.set_num_threads(threads), since
 * torch.set_num_threads alone does not pin OpenBLAS. OPENBLAS_CORETYPE is passed through as the
 * environment sets it (recorded in each line, never changed here).
 */
export function refEnv(threads: number): Record<string, string> {
  const n = String(threads)
  return { OPENBLAS_NUM_THREADS: n, OMP_NUM_THREADS: n, MKL_NUM_THREADS: n, KTP_REF_THREADS: n }
}

let commitCache: string | null = null
/** HEAD of the tree the bench runs from, with `-dirty` when sources differ from it. */
export function gitCommit(): string {
  if (commitCache) return commitCache
  // a run from an exported copy of a commit (git archive) names it through the environment
  if (process.env.KTP_BENCH_COMMIT) {
    commitCache = process.env.KTP_BENCH_COMMIT
    return commitCache
  }
  const head = spawnSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: ROOT, encoding: 'utf8' })
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' })
  commitCache =
    head.status === 0 ? `${head.stdout.trim()}${dirty.stdout.trim() ? '-dirty' : ''}` : 'unknown (not a git tree)'
  return commitCache
}

/** CPU model, core count, memory, Node version: what "machine" means in a result line. */
export function machine(): string {
  const cpus = os.cpus()
  return `${cpus[0]?.model?.trim() ?? 'unknown CPU'} × ${cpus.length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.platform()} ${os.release()}, node ${process.version}`
}

/**
 * The metadata every JSON line carries: when, on what code and machine, under what load, and the
 * thread counts and BLAS core type of both sides.
 */
export function runMeta(threads: { ktp: number | null; reference: number | null }): Record<string, unknown> {
  const [l1, l5, l15] = os.loadavg()
  return {
    date: new Date().toISOString(),
    commit: gitCommit(),
    machine: machine(),
    load_average: [round(l1, 2), round(l5, 2), round(l15, 2)],
    ktp_threads: threads.ktp,
    reference_threads: threads.reference,
    reference_env:
      threads.reference == null
        ? null
        : { ...refEnv(threads.reference), OPENBLAS_CORETYPE: process.env.OPENBLAS_CORETYPE ?? null },
    openblas_coretype: process.env.OPENBLAS_CORETYPE ?? null,
    // which process measured it: the harness gives every benchmark a process of its own (bench/run.ts)
    bench_pid: process.pid,
  }
}

/** Median, min, max and relative spread ((max − min) / median) of some samples. */
export interface Spread {
  median: number
  min: number
  max: number
  spread: number
  n: number
}

export function spreadOf(xs: number[]): Spread {
  const s = [...xs].sort((a, b) => a - b)
  const n = s.length
  const median = n === 0 ? Number.NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
  return {
    median: round(median) as number,
    min: round(s[0]) as number,
    max: round(s[n - 1]) as number,
    spread: round((s[n - 1] - s[0]) / median, 2) as number,
    n,
  }
}

/** One timed repetition: wall seconds and CPU seconds (user + system) of the work. */
export interface Sample {
  wall: number
  cpu: number
}

/**
 * Run the sides' repetitions interleaved (A B, B A, A B, …: the order alternates so neither side
 * always runs first into a changing load) and return each side's samples.
 */
export async function interleave(reps: number, sides: Array<() => Promise<Sample>>): Promise<Sample[][]> {
  const out: Sample[][] = sides.map(() => [])
  for (let r = 0; r < reps; r++) {
    const order = sides.map((_, i) => i)
    if (r % 2) order.reverse()
    for (const i of order) out[i].push(await sides[i]())
  }
  return out
}

/** Median/spread of wall and CPU time of a side's samples, as JSON fields `PREFIX_wall_s`, `PREFIX_cpu_s`. */
export function timeFields(prefix: string, samples: Sample[]): Record<string, Spread> {
  return {
    [`${prefix}_wall_s`]: spreadOf(samples.map((s) => s.wall)),
    [`${prefix}_cpu_s`]: spreadOf(samples.map((s) => s.cpu)),
  }
}

export interface ProcessSample extends Sample {
  code: number | null
  maxRssBytes: number | null
  stderr: string
  stdout: string
}

/**
 * A whole process, timed from spawn to exit: wall, CPU (user + system of it and its waited-for
 * children, from GNU time's rusage) and peak RSS. Needs /usr/bin/time for CPU; without it CPU is NaN.
 */
export function timeProcess(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; captureStdout?: boolean } = {},
): Promise<ProcessSample> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const [file, argv] = hasGnuTime ? [TIME, ['-f', 'KTPBENCH_RUSAGE %U %S %M', cmd, ...args]] : [cmd, args]
    const child = spawn(file, argv, {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, ...(opts.env ?? {}) },
      stdio: ['ignore', opts.captureStdout ? 'pipe' : 'ignore', 'pipe'],
    })
    let stderr = ''
    let stdout = ''
    child.stdout?.setEncoding('utf8')
    child.stdout?.on('data', (d: string) => (stdout += d))
    child.stderr?.setEncoding('utf8')
    child.stderr?.on('data', (d: string) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => {
      const wall = Number(process.hrtime.bigint() - t0) / 1e9
      const m = /KTPBENCH_RUSAGE ([\d.]+) ([\d.]+) (\d+)/.exec(stderr)
      resolve({
        code,
        wall,
        cpu: m ? Number(m[1]) + Number(m[2]) : Number.NaN,
        maxRssBytes: m ? Number(m[3]) * 1024 : null,
        stderr: stderr.replace(/(Command exited with non-zero status \d+\n)?KTPBENCH_RUSAGE [^\n]*\n?/, ''),
        stdout,
      })
    })
  })
}

/** A process sample that must succeed. */
export async function mustRun(
  what: string,
  cmd: string,
  args: string[],
  opts: Parameters<typeof timeProcess>[2] = {},
): Promise<ProcessSample> {
  const r = await timeProcess(cmd, args, opts)
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${r.stderr.trim().slice(-1500)}`)
  return r
}
