/**
 * A data-parallel training worker (`--workers N`; protocol in workers.ts): its own tfjs on the main
 * thread's backend, a replica of the model from the same spec, parameters loaded from shared
 * memory whenever the main thread has published new ones, and per step the gradient of its part
 * of the batch written at the ParamSet layout offsets of its region of the shared gradient buffer.
 */
import * as tf from '@tensorflow/tfjs'
import { parentPort, workerData } from 'node:worker_threads'
import { type BackendName, type Model, buildModel, selectBackend } from '../nn/index.js'
import { disposeBatch, partGradients } from './loss.js'
import { packInto, tensorFrom } from './tensors.js'
import { partFromWire, type FromWorker, type ToWorker, type WorkerInit } from './workers.js'

const init = workerData as WorkerInit
const port = parentPort
if (port == null || init?.ktpTrainWorker !== true)
  throw new Error('worker-entry.js is a training worker; it is started by ktp, not run directly')

const post = (m: FromWorker) => port.postMessage(m)
const paramView = new Float32Array(init.params)
const gradView = new Float32Array(init.grads, 4 * init.size * (init.index - 1), init.size)
const ctrl = new Int32Array(init.ctrl)

let model: Model
try {
  await selectBackend(init.backend as BackendName)
  model = buildModel(init.spec)
  if (model.params.size !== init.size)
    throw new Error(`replica has ${model.params.size} parameters, the main model ${init.size}`)
  post({ type: 'ready' })
} catch (err) {
  post({ type: 'init-error', message: (err as Error)?.stack ?? String(err) })
  process.exit(0)
}

let loaded = -1
port.on('message', (m: ToWorker) => {
  if (m.type !== 'step') return
  try {
    const version = Atomics.load(ctrl, 0)
    if (version !== m.version)
      throw new Error(`parameters of version ${m.version} expected in shared memory, found ${version}`)
    if (version !== loaded) {
      for (const slot of model.params.layout) {
        const v = model.params.get(slot.name)
        tf.tidy(() => v.assign(tensorFrom(paramView.subarray(slot.offset, slot.offset + slot.size), slot.shape)))
      }
      loaded = version
    }
    const b = partFromWire(m.part)
    let stats: Float32Array
    try {
      const r = partGradients(model, b, m.scale)
      try {
        packInto(model.params, r.grads, gradView)
        const st = tf.stack([r.value, r.correct, r.counted])
        stats = Float32Array.from(st.dataSync() as Float32Array)
        st.dispose()
      } finally {
        tf.dispose([r.value, r.correct, r.counted, ...Object.values(r.grads)])
      }
    } finally {
      disposeBatch(b)
    }
    Atomics.store(ctrl, init.index, m.id)
    post({ type: 'done', id: m.id, loss: stats[0], correct: stats[1], counted: stats[2] })
  } catch (err) {
    post({ type: 'error', id: m.id, message: (err as Error)?.stack ?? String(err) })
  }
})
