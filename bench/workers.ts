/**
 * Data-parallel training benchmark (`--workers N`): frames/s of the trainer's full step (forward,
 * backward, clip + NaN guard, SGD, statistics) through `train()`, with 1 thread and with N threads
 * (this thread + N − 1 worker_threads), on the engine benchmark's shapes (bench/engine.ts):
 * DNN 440-4×512-1000 sigmoid, batch 256; LSTM 40→256→1000, 16 chunks × 20 frames.
 *
 *   node dist/bench/workers.js [--workers 1,2] [--steps 30] [--epochs 3] [--only dnn|lstm]
 *
 * One JSON line per (model, workers) on stdout: the best epoch's frames/s (the machine is shared,
 * so the best epoch is the signal) and every epoch's figure. The held-out pass is one tiny batch.
 */
import * as tf from '@tensorflow/tfjs'
import { fileURLToPath } from 'node:url'
import { type ModelSpecInput, buildModel, mulberry32, selectBackend } from '../stages/nn/index.js'
import { DEFAULT_NEWBOB } from '../stages/train/newbob.js'
import type { TrainBatch } from '../stages/train/loss.js'
import { type DataSource, train } from '../stages/train/trainer.js'

export interface WorkersBenchResult {
  name: 'train-dnn' | 'train-lstm'
  workers: number
  frames_per_s: number
  epochs: number[]
  unit: 'frames/s'
}

function source(shape: number[], classes: number, steps: number, seed: number): DataSource {
  const r = mulberry32(seed)
  const n = shape.reduce((a, b) => a * b, 1)
  const x = Float32Array.from({ length: n }, () => 2 * r() - 1)
  const rowShape = shape.slice(0, -1)
  const rows = rowShape.reduce((a, b) => a * b, 1)
  const y = Int32Array.from({ length: rows }, () => Math.floor(r() * classes))
  return {
    async *epoch(_e: number, skip: number) {
      for (let k = skip; k < steps; k++) {
        // fresh tensors every batch, as the speech source makes them
        const labels = tf.tensor(y, rowShape, 'int32')
        const b: TrainBatch = {
          x: tf.tensor(x, shape),
          labels,
          rows,
          terms: [
            { targets: tf.tidy(() => tf.cast(tf.oneHot(labels, classes), 'float32')), temperature: 1, weight: 1 },
          ],
        }
        if (rowShape.length === 2) b.mask = tf.ones(rowShape)
        yield b
      }
    },
  }
}

async function one(
  name: WorkersBenchResult['name'],
  spec: ModelSpecInput,
  shape: number[],
  workers: number,
  steps: number,
  epochs: number,
): Promise<WorkersBenchResult> {
  const model = buildModel(spec)
  const classes = spec.numClasses
  const r = await train(model, source(shape, classes, steps, 2), source([1, ...shape.slice(1)], classes, 1, 3), {
    optimizer: { name: 'sgd' },
    clip: 5,
    maxBadBatches: 1000,
    logEvery: 10,
    phase: 'bench',
    workers,
    schedule: { ...DEFAULT_NEWBOB, initialLr: 1e-3, maxEpochs: epochs, minEpochs: epochs, fixed: true },
  })
  model.params.dispose()
  const per = r.epochs.map((e) => e.rows_per_s)
  // The first epoch includes XNNPACK operator creation and heap growth: report the best of the rest.
  return {
    name,
    workers,
    frames_per_s: Math.max(...(per.length > 1 ? per.slice(1) : per)),
    epochs: per,
    unit: 'frames/s',
  }
}

export async function benchWorkers(
  opts: { workers?: number[]; steps?: number; epochs?: number; only?: string } = {},
): Promise<WorkersBenchResult[]> {
  const workers = opts.workers ?? [1, 2]
  const steps = opts.steps ?? 30
  const epochs = opts.epochs ?? 3
  const backend = await selectBackend('wasm')
  process.stderr.write(`backend: ${backend}\n`)
  const out: WorkersBenchResult[] = []
  for (const n of workers) {
    if (opts.only !== 'lstm') {
      const dnn: ModelSpecInput = {
        model: { type: 'dnn', hidden: [512, 512, 512, 512], activation: 'sigmoid' },
        inputDim: 440,
        numClasses: 1000,
        seed: 1,
      }
      out.push(await one('train-dnn', dnn, [256, 440], n, steps, epochs))
      process.stderr.write(`${JSON.stringify(out[out.length - 1])}\n`)
    }
    if (opts.only !== 'dnn') {
      const lstm: ModelSpecInput = {
        model: { type: 'lstm', layers: 1, cells: 256 },
        inputDim: 40,
        numClasses: 1000,
        seed: 1,
      }
      out.push(await one('train-lstm', lstm, [16, 20, 40], n, steps, epochs))
      process.stderr.write(`${JSON.stringify(out[out.length - 1])}\n`)
    }
  }
  return out
}

const isMain = process.argv[1] != null && fileURLToPath(import.meta.url) === process.argv[1]
if (isMain) {
  const args = process.argv.slice(2)
  const arg = (k: string) => {
    const i = args.indexOf(k)
    return i >= 0 ? args[i + 1] : undefined
  }
  const results = await benchWorkers({
    workers: arg('--workers')?.split(',').map(Number),
    steps: arg('--steps') ? Number(arg('--steps')) : undefined,
    epochs: arg('--epochs') ? Number(arg('--epochs')) : undefined,
    only: arg('--only'),
  })
  for (const r of results) process.stdout.write(`${JSON.stringify(r)}\n`)
}
