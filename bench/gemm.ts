/**
 * `gemm`: the float32 matrix-product rate of each engine on one thread, in GFLOP per CPU second —
 * the ceiling BENCHMARKS.md reads the training and inference lines against ("Limits"). ktp's side is
 * `tf.matMul` on tfjs-wasm (XNNPACK, SIMD, no threads under Node); the reference is `torch.mm` with
 * OpenBLAS pinned to 1 thread (bench/engine_ref.py, `gemm-MxKxN`). Repetitions are interleaved.
 *
 * The shapes are the products the benchmarked steps are made of, so a small-GEMM penalty shows:
 *   256×440×512, 256×512×512, 256×512×1000   DNN layers at batch 256 (train-dnn, infer)
 *   320×256×1024                              an LSTM layer's input projection over a 16 × 20 chunk
 *   16×256×1024                               one recurrent step of that layer (train-lstm runs 40)
 * `ktp` multiplies by the same B every time, so XNNPACK packs B once (it caches the packed operator
 * by tensor). In a training step no product sees its B twice: the weights change every step and the
 * backward products multiply fresh gradients. `ktp_fresh_b` is the rate with a new B tensor (same
 * values) every call, timed around the product alone: the ceiling a training step can reach.
 * The line has no goal: it is a measured limit, not a target.
 */
import * as tf from '@tensorflow/tfjs'
import { selectBackend } from '../stages/nn/index.js'
import { type BenchLine, type HarnessOptions, type Sample, round, runMeta, spreadOf, timeFields } from './common.js'
import { Reference, block, randomTensor } from './engine.js'

const SHAPES: [number, number, number][] = [
  [256, 440, 512],
  [256, 512, 512],
  [256, 512, 1000],
  [320, 256, 1024],
  [16, 256, 1024],
]

export async function benchGemm(h: HarnessOptions): Promise<BenchLine[]> {
  await selectBackend('wasm')
  const reps = h.reps ?? 3
  const ref = h.reference ? await Reference.start(1) : null
  const out: BenchLine[] = []
  try {
    for (const [m, k, n] of SHAPES) {
      const flops = 2 * m * k * n
      // about 10 GFLOP per block: a few tenths of a second on either side
      const steps = h.quick ? 2 : Math.max(8, Math.round(1e10 / flops))
      const a = randomTensor([m, k], 1)
      const b = randomTensor([k, n], 2)
      // wasm runs kernels synchronously, so the product is done when matMul returns
      const product = () => tf.matMul(a, b).dispose()
      for (let i = 0; i < 3; i++) product() // XNNPACK packs the operator on first use
      const freshProduct = () => freshBlock(steps, a, b)
      freshProduct()
      const variant = `${m}x${k}x${n}`
      const sides: Array<() => Promise<Sample> | Sample> = [() => block(steps, product), freshProduct]
      if (ref) sides.push(() => ref.block(`gemm-${variant}`, steps))
      const samples: Sample[][] = sides.map(() => [])
      for (let i = 0; i < reps; i++) {
        const order = i % 2 ? [...sides.keys()].reverse() : [...sides.keys()]
        for (const j of order) samples[j].push(await sides[j]())
      }
      const [kt, ft, rt] = samples
      tf.dispose([a, b])
      const gflops = (xs: Sample[]) => (flops * steps) / spreadOf(xs.map((x) => x.cpu)).median / 1e9
      const kg = gflops(kt)
      const fg = gflops(ft)
      const rg = ref ? gflops(rt) : null
      const l: BenchLine = {
        name: 'gemm',
        variant,
        ktp: round(kg),
        reference: rg == null ? null : round(rg),
        unit: 'GFLOP/CPU-s',
        ratio: rg == null ? null : round(kg / rg),
        ktp_fresh_b: round(fg),
        goal: null,
        metric: 'float32 (M×K)·(K×N) products, 2·M·K·N flops each, per CPU second (median of blocks)',
        steps_per_block: steps,
        ...timeFields('ktp', kt),
        ...timeFields('ktp_fresh_b', ft),
        ...(ref ? timeFields('reference', rt) : {}),
        backend: tf.getBackend(),
        torch: ref?.torch ?? null,
        ...runMeta({ ktp: 1, reference: ref ? 1 : null }),
      }
      h.log(
        `gemm ${variant}: ktp ${l.ktp} (new B every call ${fg.toFixed(1)}) vs torch ${l.reference} GFLOP/CPU-s (ratio ${l.ratio})`,
      )
      out.push(l)
    }
  } finally {
    ref?.close()
  }
  return out
}

/**
 * `steps` products a·B', each B' a new tensor with b's values, timed around the product only (wasm
 * kernels are synchronous): the copy that makes B' is not counted, its packing by XNNPACK is.
 */
function freshBlock(steps: number, a: tf.Tensor, b: tf.Tensor): Sample {
  let wall = 0
  let cpu = 0
  for (let i = 0; i < steps; i++) {
    const fresh = tf.add(b, 0)
    const c0 = process.cpuUsage()
    const t0 = performance.now()
    tf.matMul(a, fresh).dispose()
    wall += performance.now() - t0
    const c = process.cpuUsage(c0)
    cpu += c.user + c.system
    fresh.dispose()
  }
  return { wall: wall / 1000, cpu: cpu / 1e6 }
}
