/**
 * `train-dnn` / `train-lstm`: training-step throughput of ktp on tfjs-wasm against the same step in
 * PyTorch (CPU, OpenBLAS; bench/engine_ref.py), on equal threads:
 *   variant `1-thread`   ktp's step on this thread vs torch with 1 thread (OpenBLAS and OpenMP
 *                        pinned to 1); `ktp`/`reference` are frames per CPU second (medians)
 *   variant `2-workers`  ktp's data-parallel step (`--workers 2`: this thread + one worker_thread,
 *                        stages/train/workers.ts) vs torch with 2 threads; frames per wall second
 *   variants `trainer-1-thread`, `trainer-2-workers`  the same, with the step `ktp train-student`
 *                        runs (stages/train/step.ts: clip 5, NaN/Inf guard, the trainer's SGD and its
 *                        statistics) against torch's clip_grad_norm_(5) + isfinite skip + SGD.
 *                        Not in issue 16's table: it keeps the benchmarked step the one users run.
 * The step: forward, soft-target cross-entropy averaged over frames, backward, plain SGD update —
 * no clipping on either side (the `trainer-` variants add it on both). Repetitions (blocks of
 * `steps` steps) are interleaved with the reference's, which runs as one server process per
 * thread count (no torch import per block).
 * Shapes (DESIGN §4): DNN 440-4×512-1000 sigmoid, batch 256; LSTM 40→2×256→1000, 16 chunks × 20.
 *
 *   node dist/bench/engine.js [--profile]    the lines on stdout; --profile: per-kernel times (stderr)
 */
import * as tf from '@tensorflow/tfjs'
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { type Model, buildModel, mulberry32, selectBackend, sgdStep } from '../stages/nn/index.js'
import { type TrainBatch, disposeBatch, partGradients } from '../stages/train/loss.js'
import { Optimizer } from '../stages/train/optimizer.js'
import { makeStep } from '../stages/train/step.js'
import { GradientWorkers } from '../stages/train/workers.js'
import {
  type BenchLine,
  PYTHON,
  type Sample,
  refEnv,
  refScript,
  round,
  runMeta,
  spreadOf,
  timeFields,
} from './common.js'

export interface EngineBenchOptions {
  /** Steps per timed block (default 8). */
  steps?: number
  /** Interleaved blocks per side (default 3). */
  reps?: number
  /** Run the PyTorch reference (needs /usr/bin/python3 with torch). */
  reference?: boolean
  /** Print a per-kernel profile of one step to stderr. */
  profile?: boolean
  log?: (l: string) => void
}

/** Uniform [−1, 1) values from a seeded generator (the same inputs on every run). */
export function randomTensor(shape: number[], seed: number): tf.Tensor {
  const r = mulberry32(seed)
  const n = shape.reduce((a, b) => a * b, 1)
  const v = new Float32Array(n)
  for (let i = 0; i < n; i++) v[i] = 2 * r() - 1
  return tf.tensor(v, shape)
}

/** One SGD step on this thread, on tensors only (no dataSync): the trainer's hot loop. */
function trainStep(model: Model, b: TrainBatch, lr: number): void {
  tf.tidy(() => {
    const { grads } = partGradients(model, b, 1)
    sgdStep(model.params, grads, lr)
  })
}

/** One data-parallel SGD step: part 0 here, the rest on the pool, gradients summed (step.ts minus clipping). */
async function parallelStep(model: Model, pool: GradientWorkers, b: TrainBatch, lr: number): Promise<void> {
  const split = pool.dispatch(model.params, b)
  const local = partGradients(model, split.local, split.localScale)
  disposeBatch(split.local)
  const remote = await split.remote
  tf.tidy(() => sgdStep(model.params, pool.sumGradients(model.params, local.grads, remote), lr))
  tf.dispose([local.value, local.correct, local.counted, ...Object.values(local.grads)])
}

async function profileStep(name: string, model: Model, b: TrainBatch): Promise<void> {
  for (let i = 0; i < 3; i++) trainStep(model, b, 0.01)
  const info = await tf.profile(() => trainStep(model, b, 0.01))
  const byKernel = new Map<string, { ms: number; n: number }>()
  for (const k of info.kernels) {
    if (k.name === 'forward' || k.name.endsWith('__op')) continue
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0
    const key = `${k.name} ${JSON.stringify(k.inputShapes)}`
    const e = byKernel.get(key) ?? { ms: 0, n: 0 }
    e.ms += ms
    e.n++
    byKernel.set(key, e)
  }
  const rows = [...byKernel.entries()].sort((a, b) => b[1].ms - a[1].ms)
  const total = rows.reduce((s, [, e]) => s + e.ms, 0)
  process.stderr.write(`# ${name}: ${total.toFixed(1)} ms kernel time (profiled)\n`)
  for (const [k, e] of rows.slice(0, 25))
    process.stderr.write(`  ${e.ms.toFixed(2).padStart(8)} ms ${String(e.n).padStart(4)}× ${k}\n`)
}

/** A block of steps, timed: wall and process CPU (all threads, workers included). */
export async function block(steps: number, step: () => Promise<void> | void): Promise<Sample> {
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  for (let i = 0; i < steps; i++) await step()
  const wall = (performance.now() - t0) / 1000
  const c = process.cpuUsage(c0)
  return { wall, cpu: (c.user + c.system) / 1e6 }
}

/** The PyTorch server (engine_ref.py) with `threads` threads, every pool pinned. */
export class Reference {
  private readonly child: ChildProcessWithoutNullStreams
  private readonly lines: AsyncIterator<string>
  torch = '?'
  private constructor(threads: number) {
    this.child = spawn(PYTHON, [refScript('engine_ref.py')], { env: { ...process.env, ...refEnv(threads) } })
    this.child.stderr.setEncoding('utf8')
    let err = ''
    this.child.stderr.on('data', (d: string) => (err = (err + d).slice(-2000)))
    this.child.on('exit', (code) => {
      if (code) process.stderr.write(`engine_ref.py exited ${code}: ${err}\n`)
    })
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]()
  }
  static async start(threads: number): Promise<Reference> {
    const r = new Reference(threads)
    const first = await r.lines.next()
    if (first.done) throw new Error('engine_ref.py did not start (is torch installed?)')
    r.torch = (JSON.parse(first.value) as { torch: string }).torch
    return r
  }
  /** `steps` steps of MODEL: dnn, lstm, or gemm-MxKxN (one M×K · K×N product per step). */
  async block(model: string, steps: number): Promise<Sample & { frames: number }> {
    this.child.stdin.write(`${model} ${steps}\n`)
    const l = await this.lines.next()
    if (l.done) throw new Error('engine_ref.py ended early')
    return JSON.parse(l.value) as Sample & { frames: number }
  }
  close(): void {
    this.child.stdin.end()
  }
}

type Variant = '1-thread' | '2-workers' | 'trainer-1-thread' | 'trainer-2-workers'

interface Shape {
  name: 'train-dnn' | 'train-lstm'
  ref: 'dnn' | 'lstm'
  framesPerStep: number
  model: () => Model
  batch: () => TrainBatch
}

const SHAPES: Shape[] = [
  {
    name: 'train-dnn',
    ref: 'dnn',
    framesPerStep: 256,
    model: () =>
      buildModel({
        model: { type: 'dnn', hidden: [512, 512, 512, 512], activation: 'sigmoid' },
        inputDim: 440,
        numClasses: 1000,
        seed: 1,
      }),
    batch: () => ({
      x: randomTensor([256, 440], 2),
      rows: 256,
      terms: [{ temperature: 1, weight: 1, targets: tf.tidy(() => tf.softmax(randomTensor([256, 1000], 3))) }],
    }),
  },
  {
    name: 'train-lstm',
    ref: 'lstm',
    framesPerStep: 320,
    model: () =>
      buildModel({ model: { type: 'lstm', layers: 2, cells: 256 }, inputDim: 40, numClasses: 1000, seed: 1 }),
    batch: () => ({
      x: randomTensor([16, 20, 40], 4),
      rows: 320,
      terms: [{ temperature: 1, weight: 1, targets: tf.tidy(() => tf.softmax(randomTensor([16, 20, 1000], 5))) }],
    }),
  },
]

function line(
  s: Shape,
  variant: Variant,
  threads: number,
  steps: number,
  k: Sample[],
  r: Sample[] | null,
  torch: string | null,
): BenchLine {
  const frames = s.framesPerStep * steps
  const per = threads === 1 ? 'cpu' : 'wall'
  const fps = (xs: Sample[]) => frames / spreadOf(xs.map((x) => x[per])).median
  const kf = fps(k)
  const rf = r ? fps(r) : null
  return {
    name: s.name,
    variant,
    ktp: round(kf),
    reference: rf == null ? null : round(rf),
    unit: per === 'cpu' ? 'frames/CPU-s' : 'frames/s',
    ratio: rf == null ? null : round(kf / rf),
    goal: variant.startsWith('trainer-') ? null : 'ratio >= 0.5',
    metric: per === 'cpu' ? 'frames per CPU second (median of blocks)' : 'frames per wall second (median of blocks)',
    steps_per_block: steps,
    frames_per_step: s.framesPerStep,
    ktp_wall_fps: round(frames / spreadOf(k.map((x) => x.wall)).median),
    ktp_cpu_fps: round(frames / spreadOf(k.map((x) => x.cpu)).median),
    ...(r
      ? {
          reference_wall_fps: round(frames / spreadOf(r.map((x) => x.wall)).median),
          reference_cpu_fps: round(frames / spreadOf(r.map((x) => x.cpu)).median),
        }
      : {}),
    ...timeFields('ktp', k),
    ...(r ? timeFields('reference', r) : {}),
    backend: tf.getBackend(),
    torch,
    ...runMeta({ ktp: threads, reference: r ? threads : null }),
  }
}

export async function benchEngine(opts: EngineBenchOptions = {}): Promise<BenchLine[]> {
  const steps = opts.steps ?? 8
  const reps = opts.reps ?? 3
  const log = opts.log ?? (() => {})
  await selectBackend('wasm')
  const out: BenchLine[] = []
  for (const threads of [1, 2]) {
    const ref = opts.reference === false ? null : await Reference.start(threads)
    try {
      for (const s of SHAPES) {
        const model = s.model()
        const b = s.batch()
        const pool = threads > 1 ? await GradientWorkers.start(model, threads) : null
        try {
          if (opts.profile && !pool) await profileStep(s.name, model, b)
          const plain = pool ? () => parallelStep(model, pool, b, 0.01) : () => trainStep(model, b, 0.01)
          // the trainer's own step (what `ktp train-student` runs per batch), its statistics dropped
          const trainer = makeStep(model, new Optimizer(model.params, { name: 'sgd' }), 5, pool)
          const trainerStep = async () => (await trainer(b, 0.01)).dispose()
          const kinds = [
            { variant: threads === 1 ? '1-thread' : '2-workers', step: plain, ref: s.ref },
            {
              variant: threads === 1 ? 'trainer-1-thread' : 'trainer-2-workers',
              step: trainerStep,
              ref: `${s.ref}-clip5`,
            },
          ] as const
          for (const kind of kinds) {
            for (let i = 0; i < 3; i++) await kind.step() // warm: XNNPACK operator creation, heap growth
            const sides: Array<() => Promise<Sample>> = [() => block(steps, kind.step)]
            if (ref) sides.push(() => ref.block(kind.ref, steps))
            const k: Sample[] = []
            const r: Sample[] = []
            for (let i = 0; i < reps; i++) {
              const order = i % 2 ? [...sides.keys()].reverse() : [...sides.keys()]
              for (const j of order) (j === 0 ? k : r).push(await sides[j]())
            }
            const l = line(s, kind.variant, threads, steps, k, ref ? r : null, ref?.torch ?? null)
            log(`${s.name} ${l.variant}: ktp ${l.ktp} vs torch ${l.reference} ${l.unit} (ratio ${l.ratio})`)
            out.push(l)
          }
        } finally {
          await pool?.terminate()
          tf.dispose([b.x, ...b.terms.map((t) => t.targets as tf.Tensor)])
          model.params.dispose()
        }
      }
    } finally {
      ref?.close()
    }
  }
  return out
}

const isMain = process.argv[1] != null && fileURLToPath(import.meta.url) === process.argv[1]
if (isMain) {
  const args = process.argv.slice(2)
  const results = await benchEngine({
    profile: args.includes('--profile'),
    reference: !args.includes('--no-reference'),
    log: (l) => process.stderr.write(`# ${l}\n`),
  })
  for (const r of results) process.stdout.write(`${JSON.stringify(r)}\n`)
}
