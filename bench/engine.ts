/**
 * Engine benchmark: training-step throughput of ktp's fast path on tfjs-wasm (one thread) against
 * the same step in PyTorch (CPU, OpenBLAS; best of 1 and 2 threads) from bench/engine_ref.py.
 *
 *   node dist/bench/engine.js                 one JSON line per benchmark on stdout
 *   node dist/bench/engine.js --profile       also per-kernel times of one step on stderr
 *   node dist/bench/engine.js --no-reference  skip PyTorch (ratio null)
 *
 * Shapes (DESIGN §4): DNN 440-4×512-1000 sigmoid, batch 256; LSTM 40→256 cells→1000-way softmax,
 * 16 chunks × 20 frames with BPTT. Loss: soft-target cross-entropy over frames; plain SGD step.
 */
import * as tf from '@tensorflow/tfjs'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Model, buildModel, mulberry32, selectBackend, sgdStep } from '../stages/nn/index.js'
import { partGradients } from '../stages/train/loss.js'

export interface EngineBenchResult {
  name: 'train-dnn' | 'train-lstm'
  ktp: number
  reference: number | null
  unit: 'frames/s'
  ratio: number | null
}

export interface EngineBenchOptions {
  /** Steps per timed repetition. */
  steps?: number
  /** Timed repetitions; the best is reported (the machine is shared, so the best is the signal). */
  reps?: number
  /** Run the PyTorch reference (needs /usr/bin/python3 with torch). */
  reference?: boolean
  /** Print a per-kernel profile of one step to stderr. */
  profile?: boolean
}

function randomTensor(shape: number[], seed: number): tf.Tensor {
  const r = mulberry32(seed)
  const n = shape.reduce((a, b) => a * b, 1)
  const v = new Float32Array(n)
  for (let i = 0; i < n; i++) v[i] = 2 * r() - 1
  return tf.tensor(v, shape)
}

/** One SGD step, entirely on tensors (no dataSync): what the trainer's hot loop does. */
function trainStep(model: Model, x: tf.Tensor, p: tf.Tensor, lr: number): void {
  tf.tidy(() => {
    const rows = p.size / p.shape[p.rank - 1]
    const { grads } = partGradients(model, { x, terms: [{ temperature: 1, weight: 1, targets: p }], rows }, 1)
    sgdStep(model.params, grads, lr)
  })
}

async function profileStep(name: string, model: Model, x: tf.Tensor, p: tf.Tensor): Promise<void> {
  for (let i = 0; i < 3; i++) trainStep(model, x, p, 0.01) // warm: XNNPACK operator creation, heap growth
  const info = await tf.profile(() => trainStep(model, x, p, 0.01))
  const byKernel = new Map<string, { ms: number; n: number }>()
  for (const k of info.kernels) {
    // Scopes (custom ops, composite ops) nest kernels that are listed on their own: skip them.
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
  const count = rows.reduce((s, [, e]) => s + e.n, 0)
  const t0 = performance.now()
  trainStep(model, x, p, 0.01)
  const wall = performance.now() - t0
  process.stderr.write(
    `# ${name}: ${count} kernels, ${total.toFixed(1)} ms kernel time (profiled); unprofiled step ${wall.toFixed(1)} ms\n`,
  )
  for (const [k, e] of rows.slice(0, 25))
    process.stderr.write(`  ${e.ms.toFixed(2).padStart(8)} ms ${String(e.n).padStart(4)}× ${k}\n`)
}

function timeSteps(model: Model, x: tf.Tensor, p: tf.Tensor, frames: number, steps: number, reps: number): number {
  for (let i = 0; i < 3; i++) trainStep(model, x, p, 0.01)
  let best = 0
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now()
    for (let i = 0; i < steps; i++) trainStep(model, x, p, 0.01)
    const s = (performance.now() - t0) / 1000
    best = Math.max(best, (frames * steps) / s)
  }
  return best
}

/** bench/engine_ref.py from the source tree, whether we run from bench/ (ts) or dist/bench/ (js). */
function referenceScript(): string | null {
  const here = dirname(fileURLToPath(import.meta.url))
  const candidates = [join(here, 'engine_ref.py'), join(here, '..', '..', 'bench', 'engine_ref.py')]
  return candidates.find((p) => existsSync(p)) ?? null
}

function runReference(steps: number, reps: number): Record<string, number> | null {
  const script = referenceScript()
  if (script == null) {
    process.stderr.write('bench/engine_ref.py not found; reference skipped\n')
    return null
  }
  const out = spawnSync('/usr/bin/python3', [script, String(steps), String(reps)], { encoding: 'utf8' })
  if (out.status !== 0) {
    process.stderr.write(`engine_ref.py failed: ${out.stderr ?? out.error}\n`)
    return null
  }
  const j = JSON.parse(out.stdout.trim().split('\n').pop()!) as Record<
    string,
    { best: number; threads: Record<string, number> }
  >
  process.stderr.write(
    `reference (PyTorch ${String(j.torch)}, frames/s by threads): dnn ${JSON.stringify(j['train-dnn'].threads)}, lstm ${JSON.stringify(j['train-lstm'].threads)}\n`,
  )
  return { 'train-dnn': j['train-dnn'].best, 'train-lstm': j['train-lstm'].best }
}

export async function benchEngine(opts: EngineBenchOptions = {}): Promise<EngineBenchResult[]> {
  const steps = opts.steps ?? 20
  const reps = opts.reps ?? 3
  const backend = await selectBackend('wasm')
  process.stderr.write(`backend: ${backend}\n`)
  const results: EngineBenchResult[] = []

  const dnn = buildModel({
    model: { type: 'dnn', hidden: [512, 512, 512, 512], activation: 'sigmoid' },
    inputDim: 440,
    numClasses: 1000,
    seed: 1,
  })
  const xd = randomTensor([256, 440], 2)
  const pd = tf.tidy(() => tf.softmax(randomTensor([256, 1000], 3)))
  if (opts.profile) await profileStep('train-dnn', dnn, xd, pd)
  results.push({
    name: 'train-dnn',
    ktp: timeSteps(dnn, xd, pd, 256, steps, reps),
    reference: null,
    unit: 'frames/s',
    ratio: null,
  })
  tf.dispose([xd, pd])
  dnn.params.dispose()

  const lstm = buildModel({ model: { type: 'lstm', layers: 1, cells: 256 }, inputDim: 40, numClasses: 1000, seed: 1 })
  const xl = randomTensor([16, 20, 40], 4)
  const pl = tf.tidy(() => tf.softmax(randomTensor([16, 20, 1000], 5)))
  if (opts.profile) await profileStep('train-lstm', lstm, xl, pl)
  results.push({
    name: 'train-lstm',
    ktp: timeSteps(lstm, xl, pl, 320, steps, reps),
    reference: null,
    unit: 'frames/s',
    ratio: null,
  })
  tf.dispose([xl, pl])
  lstm.params.dispose()

  if (opts.reference !== false) {
    const ref = runReference(steps, reps) // same step count and repetitions as the ktp side
    if (ref != null) {
      for (const r of results) {
        r.reference = ref[r.name]
        r.ratio = r.ktp / r.reference
      }
    }
  }
  return results
}

const isMain = process.argv[1] != null && fileURLToPath(import.meta.url) === process.argv[1]
if (isMain) {
  const args = process.argv.slice(2)
  const results = await benchEngine({
    profile: args.includes('--profile'),
    reference: !args.includes('--no-reference'),
  })
  for (const r of results) process.stdout.write(`${JSON.stringify(r)}\n`)
}
