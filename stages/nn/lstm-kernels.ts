/**
 * Fused element-wise LSTM step kernels for the wasm backend.
 *
 * A plain LSTM step written with tfjs ops is ~12 kernels forward and ~20 backward (slices of the
 * gate block, sigmoid, tanh, products, sums, concats), each on a [B, H] block: at the bench shape
 * (B = 16, H = 256) a kernel's dispatch and its pass over memory cost more than its arithmetic.
 * These kernels do one step's gate math on views of the wasm heap (calling the backend's
 * Sigmoid and Tanh directly, without the engine), so a step is a recurrent GEMM plus one kernel
 * call each way.
 *
 * Gate layout [i, f, o, g] as in recurrence.ts; the `gates` output holds σ(i), σ(f), σ(o), tanh(g).
 *   forward:  z = xp[row…row+B) + hU,  c = f⊙cₚ + i⊙g,  tc = tanh(c),  h = o⊙tc
 *   backward: from dh = dy[row…] + dhRec and dc from the next step, dz [B, 4H] and dc⊙f.
 *
 * Values: every + − × is rounded to float32 in the same order as the tfjs-op path (recurrence.ts),
 * and σ and tanh are the backend's own Sigmoid and Tanh kernels, so the step, forward and backward,
 * matches that path bit for bit (test/lstm-kernels.test.ts): a model trained either way is the same.
 */
import * as tf from '@tensorflow/tfjs'
import type { WasmBackendLike } from './wasm-heap.js'

export const LSTM_CELL_FORWARD = 'KtpLstmCellForward'
export const LSTM_CELL_BACKWARD = 'KtpLstmCellBackward'

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }

const f32 = Math.fround

/** Float32 heap views of tensors, taken after every output is allocated (allocation may grow the heap). */
function views(backend: WasmBackendLike, ts: (tf.TensorInfo | undefined)[]): (Float32Array | null)[] {
  return ts.map((t) => (t == null ? null : (backend.typedArrayFromHeap(t) as Float32Array)))
}

/**
 * The backend's own Sigmoid (XNNPACK, vectorised: a JS Math.exp loop was ~2× slower than the ops it
 * replaced) and Tanh, the kernels tf.sigmoid and tf.tanh run on the op path.
 */
let wasmSigmoid: tf.KernelFunc | null = null
let wasmTanh: tf.KernelFunc | null = null

/** An element-wise kernel of the backend applied to a whole tensor, without a trip through the engine. */
function unaryOf(kernel: tf.KernelFunc, backend: WasmBackendLike, x: tf.TensorInfo): tf.TensorInfo {
  return kernel({ inputs: { x }, backend: backend as unknown as tf.KernelBackend, attrs: {} }) as tf.TensorInfo
}

/**
 * inputs xp [N, 4H], hU [B, 4H] (absent at the first step), cPrev [B, H] (absent at the first
 * step); attrs row, B. Outputs gates, c, tanh(c), h.
 *
 * tanh goes through the backend's own Tanh kernel, as tf.tanh does on the op path. Computing it as
 * 2σ(2x) − 1 (two vectorised σ calls; wasm's Tanh is scalar tanhf, ~10× slower per element) is
 * faster but differs by ~1e-7: a trained model would then no longer be byte for byte the one the
 * op path (and every committed result) gives.
 */
function cellForward(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as WasmBackendLike
  const { xp, hU, cPrev } = args.inputs as Record<string, tf.TensorInfo | undefined>
  const { row, B } = args.attrs as { row: number; B: number }
  const G = xp!.shape[1]
  const H = G / 4
  // z = xp + hU, the i, f, o blocks in zT (σ of all of it: the g columns are overwritten below) and
  // the g block also in its own [B, H] for tanh.
  const zT = backend.makeOutput([B, G], 'float32')
  const zgT = backend.makeOutput([B, H], 'float32')
  {
    const [x, u, z, zg] = views(backend, [xp, hU, zT, zgT])
    const off = row * G
    for (let b = 0; b < B; b++) {
      const o = b * G
      for (let k = o; k < o + G; k++) z![k] = u ? f32(x![off + k] + u[k]) : x![off + k]
      zg!.set(z!.subarray(o + 3 * H, o + G), b * H)
    }
  }
  const gatesT = unaryOf(wasmSigmoid!, backend, zT)
  backend.disposeData(zT.dataId)
  const tgT = unaryOf(wasmTanh!, backend, zgT)
  backend.disposeData(zgT.dataId)
  const cT = backend.makeOutput([B, H], 'float32')
  {
    const [cp, gates, tg, c] = views(backend, [cPrev, gatesT, tgT, cT])
    for (let b = 0; b < B; b++) {
      const go = b * G
      const so = b * H
      for (let j = 0; j < H; j++) {
        const ig = gates![go + j]
        const g = tg![so + j]
        gates![go + 3 * H + j] = g
        c![so + j] = cp ? f32(f32(gates![go + H + j] * cp[so + j]) + f32(ig * g)) : f32(ig * g)
      }
    }
  }
  backend.disposeData(tgT.dataId)
  const tcT = unaryOf(wasmTanh!, backend, cT)
  const hT = backend.makeOutput([B, H], 'float32')
  {
    const [gates, tc, h] = views(backend, [gatesT, tcT, hT])
    for (let b = 0; b < B; b++) {
      const go = b * G + 2 * H
      const so = b * H
      for (let j = 0; j < H; j++) h![so + j] = gates![go + j] * tc![so + j]
    }
  }
  return [gatesT, cT, tcT, hT]
}

/**
 * inputs dy [N, H], gates [B, 4H], tc [B, H], and when present dhRec (dh from the next step's
 * recurrent product), cPrev, dcNext (dc⊙f of the next step); attrs row. Outputs dz [B, 4H], dc⊙f.
 */
function cellBackward(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as WasmBackendLike
  const ins = args.inputs as Record<string, tf.TensorInfo | undefined>
  const row = (args.attrs as { row: number }).row
  const G = ins.gates!.shape[1]
  const B = ins.gates!.shape[0]
  const H = G / 4
  const dzT = backend.makeOutput([B, G], 'float32')
  const dcfT = backend.makeOutput([B, H], 'float32')
  const [dy, gates, tc, dhRec, cp, dcNext, dz, dcf] = views(backend, [
    ins.dy,
    ins.gates,
    ins.tc,
    ins.dhRec,
    ins.cPrev,
    ins.dcNext,
    dzT,
    dcfT,
  ])
  for (let b = 0; b < B; b++) {
    const go = b * G
    const so = b * H
    const yo = (row + b) * H
    for (let j = 0; j < H; j++) {
      const ig = gates![go + j]
      const fg = gates![go + H + j]
      const og = gates![go + 2 * H + j]
      const g = gates![go + 3 * H + j]
      const t = tc![so + j]
      const dh = dhRec ? f32(dy![yo + j] + dhRec[so + j]) : dy![yo + j]
      const dO = f32(dh * t)
      let dc = f32(f32(dh * og) * f32(1 - f32(t * t)))
      if (dcNext) dc = f32(dc + dcNext[so + j])
      const dF = cp ? f32(dc * cp[so + j]) : 0
      dz![go + j] = f32(dc * g) * f32(ig * f32(1 - ig))
      dz![go + H + j] = dF * f32(fg * f32(1 - fg))
      dz![go + 2 * H + j] = dO * f32(og * f32(1 - og))
      dz![go + 3 * H + j] = f32(dc * ig) * f32(1 - f32(g * g))
      dcf![so + j] = dc * fg
    }
  }
  return [dzT, dcfT]
}

let registered = false

/** Register the fused kernels on the wasm backend (idempotent; a no-op where wasm is absent). */
export function registerLstmKernels(): void {
  if (registered) return
  wasmSigmoid = tf.getKernel('Sigmoid', 'wasm')?.kernelFunc ?? null
  wasmTanh = tf.getKernel('Tanh', 'wasm')?.kernelFunc ?? null
  if (wasmSigmoid == null || wasmTanh == null) return
  tf.registerKernel({ kernelName: LSTM_CELL_FORWARD, backendName: 'wasm', kernelFunc: cellForward as tf.KernelFunc })
  tf.registerKernel({ kernelName: LSTM_CELL_BACKWARD, backendName: 'wasm', kernelFunc: cellBackward as tf.KernelFunc })
  registered = true
}

/**
 * Whether the fused step kernels serve the current backend. Only wasm: on cpu (tests) and native
 * tfjs-node the tfjs-op path runs, and there the heap-view trick does not apply anyway.
 */
export function fusedLstmAvailable(): boolean {
  return tf.getBackend() === 'wasm' && tf.getKernel(LSTM_CELL_FORWARD, 'wasm') != null
}

export interface CellState {
  /** [σi | σf | σo | tanh g] of the step, [B, 4H]. */
  gates: tf.Tensor
  c: tf.Tensor
  tc: tf.Tensor
  h: tf.Tensor
}

/** One forward step from the projections xp [N, 4H] at rows row…row+B−1, hU = hₜ₋₁·U and cₜ₋₁ (null at the first step). */
export function lstmCellForward(xp: tf.Tensor, row: number, B: number, hU: tf.Tensor | null, cPrev: tf.Tensor | null) {
  const inputs: tf.NamedTensorMap = { xp }
  if (hU) inputs.hU = hU
  if (cPrev) inputs.cPrev = cPrev
  const [gates, c, tc, h] = tf.engine().runKernel(LSTM_CELL_FORWARD, inputs, { row, B }) as tf.Tensor[]
  return { gates, c, tc, h } as CellState
}

/** One backward step: dz [B, 4H] of the step and dc⊙f for the step before it. */
export function lstmCellBackward(
  dy: tf.Tensor,
  row: number,
  s: { gates: tf.Tensor; tc: tf.Tensor },
  dhRec: tf.Tensor | null,
  cPrev: tf.Tensor | null,
  dcNext: tf.Tensor | null,
): { dz: tf.Tensor; dcf: tf.Tensor } {
  const inputs: tf.NamedTensorMap = { dy, gates: s.gates, tc: s.tc }
  if (dhRec) inputs.dhRec = dhRec
  if (cPrev) inputs.cPrev = cPrev
  if (dcNext) inputs.dcNext = dcNext
  const [dz, dcf] = tf.engine().runKernel(LSTM_CELL_BACKWARD, inputs, { row }) as tf.Tensor[]
  return { dz, dcf }
}
