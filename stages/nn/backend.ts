/**
 * Backend selection for the numerical engine. One code path for every backend: the caller asks for
 * a name (or `auto`), we register what is installed, `await tf.setBackend()` and `await tf.ready()`,
 * and return the name actually chosen so the caller can report it on stderr (stdout carries data).
 *
 * `auto` order (DESIGN §4): tensorflow (tfjs-node-gpu, then tfjs-node) → wasm → cpu. The native
 * packages are optional and not installed everywhere, so they are reached only through dynamic
 * `import()` whose failure is caught — a static import would make the whole engine unloadable.
 */
import * as tf from '@tensorflow/tfjs'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { installWasmKernelPatches } from './wasm-kernels.js'

export type BackendName = 'auto' | 'tensorflow' | 'wasm' | 'cpu'
export const BACKEND_NAMES: readonly BackendName[] = ['auto', 'tensorflow', 'wasm', 'cpu']

/** Try to load a native tfjs-node package; it registers the `tensorflow` backend on import. */
async function tryNative(): Promise<boolean> {
  // Package names held in variables so TypeScript does not try to resolve their (absent) types.
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg)
      if (tf.findBackendFactory('tensorflow') != null) return true
    } catch {
      // not installed, or its native binding failed to load: fall through to the next option
    }
  }
  return false
}

let wasmRegistered = false
/** Register the wasm backend, pointing it at the .wasm files inside node_modules (Node only). */
async function registerWasm(): Promise<boolean> {
  if (wasmRegistered) return true
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm')
    if (tf.env().getBool('IS_NODE')) {
      // Emscripten's default locateFile looks next to the calling script, which breaks under
      // bundlers and ts loaders; resolve the package directory explicitly instead.
      const require = createRequire(import.meta.url)
      const dir = `${dirname(require.resolve('@tensorflow/tfjs-backend-wasm'))}/`
      wasm.setWasmPaths(dir)
      // wasm threads (pthreads) do not start under Node; asking for them would hang or fail, so
      // use the single-threaded SIMD build. Data parallelism comes from worker_threads instead.
      // SIMD is left to tfjs' feature test (true on Node ≥ 16): forcing it on an engine without
      // wasm SIMD would fail to compile the module, while the test picks the plain build there.
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false)
    }
    wasmRegistered = true
    return true
  } catch {
    return false
  }
}

/**
 * Select and initialise a backend. Returns the name in use ('tensorflow' | 'wasm' | 'cpu').
 * Throws when an explicitly requested backend cannot be initialised (a silent fallback would
 * make benchmark numbers lie).
 */
export async function selectBackend(name: BackendName = 'auto'): Promise<Exclude<BackendName, 'auto'>> {
  if (!BACKEND_NAMES.includes(name)) {
    throw new Error(`expected --backend one of ${BACKEND_NAMES.join('|')}, got ${String(name)}`)
  }
  const order: Exclude<BackendName, 'auto'>[] = name === 'auto' ? ['tensorflow', 'wasm', 'cpu'] : [name]
  for (const cand of order) {
    if (cand === 'tensorflow' && !(await tryNative())) continue
    if (cand === 'wasm' && !(await registerWasm())) continue
    let ok = false
    try {
      ok = await tf.setBackend(cand)
      await tf.ready()
    } catch {
      ok = false
    }
    if (!ok || tf.getBackend() !== cand) continue
    if (cand === 'wasm') installWasmKernelPatches()
    return cand
  }
  throw new Error(`expected --backend ${name} to be available, but it could not be initialised`)
}
