/**
 * The parts of tfjs-backend-wasm's BackendWasm that the replacement kernels use: its class is not
 * re-exported with these members typed. Its own file so wasm-kernels.ts (which installs the LSTM
 * kernels) and lstm-kernels.ts share it without importing each other.
 */
import type * as tf from '@tensorflow/tfjs'

export interface WasmBackendLike {
  incRef(dataId: tf.DataId): void
  disposeData(dataId: tf.DataId): boolean
  /** Allocate an output on the heap. May grow the heap, which detaches earlier typed-array views. */
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo
  /** A view of a tensor's bytes on the current heap. */
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array
}
