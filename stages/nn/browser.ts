/**
 * nn's public face for the browser (the page of `ktp export --web`, stages/web/): the custom
 * tfjs-layers LSTM an exported student may use (registered on import, so tf.loadLayersModel finds
 * it by name) and the wasm kernel patches. index.ts is not for the browser: its backend selection
 * loads Node's module resolver to find the wasm binaries.
 */
export { KtpLSTM } from './export-layers.js'
export { installWasmKernelPatches } from './wasm-kernels.js'
