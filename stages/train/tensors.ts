import * as tf from '@tensorflow/tfjs'
import type { ParamSet, Params } from '../nn/index.js'

/**
 * Moving tensor values between tfjs and plain (often shared) memory without needless copies: the
 * data-parallel workers and the data feeders use these. On the wasm backend values are read
 * straight from the wasm heap.
 */
interface WasmBackendInternals {
  wasm: { HEAPU8: Uint8Array }
  dataIdMap: { get(id: object): { memoryOffset: number } | undefined }
}

/**
 * A view of a tensor's values in the wasm heap (no copy), or null on other backends. Valid only
 * until the next tfjs operation (the heap may grow and move): use it at once.
 */
function heapView(t: tf.Tensor): Float32Array | Int32Array | null {
  if (tf.getBackend() !== 'wasm' || (t.dtype !== 'float32' && t.dtype !== 'int32')) return null
  const be = tf.backend() as unknown as WasmBackendInternals
  const d = be.dataIdMap?.get(t.dataId)
  const heap = be.wasm?.HEAPU8
  if (d == null || heap == null) return null
  return t.dtype === 'float32'
    ? new Float32Array(heap.buffer, d.memoryOffset, t.size)
    : new Int32Array(heap.buffer, d.memoryOffset, t.size)
}

/** The values of `t` (a view into the wasm heap, else a copy): read at once, do not keep. */
export function hostValues(t: tf.Tensor): Float32Array | Int32Array {
  return heapView(t) ?? (t.dataSync() as Float32Array | Int32Array)
}

/** A tensor from values that may live in reused shared memory: copied unless the backend copies. */
export function tensorFrom(
  values: Float32Array | Int32Array,
  shape: number[],
  dtype: 'float32' | 'int32' = 'float32',
): tf.Tensor {
  return tf.tensor(tf.getBackend() === 'wasm' ? values : values.slice(), shape, dtype)
}

/** Pack parameter-shaped tensors into `out` at the layout offsets without allocating (wasm). */
export function packInto(params: ParamSet, ts: Params, out: Float32Array): void {
  for (const slot of params.layout) {
    const t = ts[slot.name]
    if (t == null) throw new Error(`pack: missing ${slot.name}`)
    out.set(hostValues(t), slot.offset)
  }
}
