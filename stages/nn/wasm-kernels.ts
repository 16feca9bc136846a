/**
 * Replacements for tfjs-backend-wasm 4.22 kernels that cost more than they need to. The engine
 * runs these on every step, so they are measured, not cosmetic (bench/engine.ts --profile).
 *
 * Transpose: every backward GEMM here needs an explicit transpose (flagged matMuls are 10–27×
 * slower on wasm), and the stock kernel's strided loop ran at ~5 ns/element. A cache-blocked
 * copy over heap views measured 2.5–4.4× faster (512×512: 1.41 → 0.33 ms; 512×1000: 2.83 →
 * 0.64 ms, min of 40). Only 2-D float32 transposes and the [1, 0, 2] row-block permutation
 * (time-major ↔ batch-major) take the fast path; everything else goes to the original kernel.
 *
 * Identity: the stock kernel copies the tensor. tfjs calls it for every `tf.clone`, i.e. for every
 * tensor a custom gradient saves for its backward pass (and the variable updates), so each saved
 * activation was copied once per step. tfjs tensors are immutable (a Variable's assign swaps the
 * data id, it never writes in place), so sharing the buffer with a reference count — what the cpu
 * backend's Identity and wasm's own Reshape do — is equivalent and free.
 *
 * Slice:
 *
 * The stock kernel starts with `backend.readSync(x.dataId)`, which copies the *whole input* out of
 * the wasm heap into a fresh ArrayBuffer before copying the slice. The recurrent engine slices one
 * time step out of a whole chunk's input projections (and gates out of a [B, 4H] block) every step,
 * so that hidden copy made a step cost O(chunk) instead of O(step). This version allocates the
 * output first (allocation may grow the heap and detach old views), then takes views of input and
 * output on the current heap and copies only the requested rows. Results are identical; strings
 * fall back to the original kernel.
 */
import * as tf from '@tensorflow/tfjs'
import { registerLstmKernels } from './lstm-kernels.js'
import type { WasmBackendLike } from './wasm-heap.js'

let installed = false

function fastSlice(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const x = args.inputs.x as tf.TensorInfo
  const backend = args.backend as WasmBackendLike
  const attrs = args.attrs as { begin: number | number[]; size: number | number[] }
  const [begin, size] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, attrs.begin, attrs.size)
  const out = backend.makeOutput(size, x.dtype)
  if (tf.util.sizeFromShape(size) === 0) return out
  const src = backend.typedArrayFromHeap(x)
  const dst = backend.typedArrayFromHeap(out)
  const strides = tf.util.computeStrides(x.shape)
  if (tf.slice_util.isSliceContinous(x.shape, begin, size)) {
    const off = tf.slice_util.computeFlatOffset(begin, strides)
    dst.set(src.subarray(off, off + dst.length))
    return out
  }
  // Copy contiguous innermost runs, iterating an odometer over the outer dimensions.
  const rank = x.shape.length
  const inner = size[rank - 1]
  const idx = new Array<number>(rank - 1).fill(0)
  let o = 0
  for (;;) {
    let off = begin[rank - 1]
    for (let d = 0; d < rank - 1; d++) off += (begin[d] + idx[d]) * strides[d]
    dst.set(src.subarray(off, off + inner), o)
    o += inner
    let d = rank - 2
    while (d >= 0 && ++idx[d] === size[d]) idx[d--] = 0
    if (d < 0) break
  }
  return out
}

const BLOCK = 32

/** Fast transposes, or null when the case is not one we handle. */
function fastTranspose(args: {
  inputs: tf.NamedTensorInfoMap
  backend: unknown
  attrs?: tf.NamedAttrMap
}): tf.TensorInfo | null {
  const x = args.inputs.x as tf.TensorInfo
  const perm = (args.attrs as { perm: number[] }).perm
  if (x.dtype !== 'float32') return null
  const backend = args.backend as WasmBackendLike
  if (x.shape.length === 2 && perm[0] === 1 && perm[1] === 0) {
    const [m, n] = x.shape
    const out = backend.makeOutput([n, m], 'float32') // before taking views: may grow the heap
    const src = backend.typedArrayFromHeap(x)
    const dst = backend.typedArrayFromHeap(out)
    for (let i0 = 0; i0 < m; i0 += BLOCK) {
      const i1 = Math.min(m, i0 + BLOCK)
      for (let j0 = 0; j0 < n; j0 += BLOCK) {
        const j1 = Math.min(n, j0 + BLOCK)
        let i = i0
        // 8 source rows per pass: each output row gets 8 contiguous writes per column, and the
        // row offsets stay in registers instead of an i·n multiply per element.
        for (; i + 8 <= i1; i += 8) {
          const s = i * n
          for (let j = j0; j < j1; j++) {
            const d = j * m + i
            const r = s + j
            dst[d] = src[r]
            dst[d + 1] = src[r + n]
            dst[d + 2] = src[r + 2 * n]
            dst[d + 3] = src[r + 3 * n]
            dst[d + 4] = src[r + 4 * n]
            dst[d + 5] = src[r + 5 * n]
            dst[d + 6] = src[r + 6 * n]
            dst[d + 7] = src[r + 7 * n]
          }
        }
        for (; i < i1; i++) {
          const s = i * n
          for (let j = j0; j < j1; j++) dst[j * m + i] = src[s + j]
        }
      }
    }
    return out
  }
  if (x.shape.length === 3 && perm[0] === 1 && perm[1] === 0 && perm[2] === 2) {
    const [a, b, c] = x.shape
    const out = backend.makeOutput([b, a, c], 'float32')
    const src = backend.typedArrayFromHeap(x)
    const dst = backend.typedArrayFromHeap(out)
    for (let j = 0; j < b; j++) {
      for (let i = 0; i < a; i++) {
        const s0 = (i * b + j) * c
        dst.set(src.subarray(s0, s0 + c), (j * a + i) * c)
      }
    }
    return out
  }
  return null
}

/** Identity by reference: share the buffer, bump its reference count. */
function sharedIdentity(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const x = args.inputs.x as tf.TensorInfo
  ;(args.backend as WasmBackendLike).incRef(x.dataId)
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype }
}

/** Replace one wasm kernel, keeping the original for strings (stored differently on that backend). */
function replace(
  name: string,
  fast: (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => tf.TensorInfo,
): void {
  const original = tf.getKernel(name, 'wasm')
  if (original == null) return
  const originalFunc = original.kernelFunc
  tf.unregisterKernel(name, 'wasm')
  tf.registerKernel({
    kernelName: name,
    backendName: 'wasm',
    kernelFunc: (args) => {
      const x = args.inputs.x as tf.TensorInfo
      return x.dtype === 'string' ? originalFunc(args) : fast(args)
    },
  })
}

/**
 * Swap in the faster Slice, Identity and Transpose kernels on the wasm backend and add the fused
 * LSTM step kernels (idempotent).
 */
export function installWasmKernelPatches(): void {
  if (installed) return
  replace('Slice', fastSlice)
  replace('Identity', sharedIdentity)
  const transpose = tf.getKernel('Transpose', 'wasm')
  if (transpose != null) {
    const originalFunc = transpose.kernelFunc
    tf.unregisterKernel('Transpose', 'wasm')
    tf.registerKernel({
      kernelName: 'Transpose',
      backendName: 'wasm',
      kernelFunc: (args) => fastTranspose(args) ?? originalFunc(args),
    })
  }
  registerLstmKernels()
  installed = true
}
