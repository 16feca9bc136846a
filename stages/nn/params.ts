/**
 * Models are plain parameter sets: an ordered map name → tf.Variable. The order is fixed at build
 * time, so a parameter set has one flat layout (name, offset, shape) that checkpoints and the later
 * data-parallel workers share: a worker packs its gradients into one Float32Array (possibly over a
 * SharedArrayBuffer) at those offsets, the average is taken there, and unpacked again.
 */
import * as tf from '@tensorflow/tfjs'

/** Parameter tensors by name: the variables themselves, or substitutes (gradient checks, workers). */
export type Params = Record<string, tf.Tensor>

export interface ParamSlot {
  name: string
  shape: number[]
  offset: number
  size: number
}

export class ParamSet {
  readonly names: readonly string[]
  private readonly vars: Map<string, tf.Variable>
  /** Flat layout: one slot per parameter, in `names` order. */
  readonly layout: readonly ParamSlot[]
  /** Total number of scalars. */
  readonly size: number

  constructor(init: ReadonlyArray<[string, Float32Array, number[]]>) {
    this.vars = new Map()
    const layout: ParamSlot[] = []
    let offset = 0
    for (const [name, values, shape] of init) {
      if (this.vars.has(name)) throw new Error(`duplicate parameter name ${name}`)
      const size = shape.reduce((a, b) => a * b, 1)
      if (values.length !== size) throw new Error(`parameter ${name}: ${values.length} values for shape [${shape}]`)
      // No tfjs variable name: those are global and would clash between two models. The variable
      // shares the initial tensor's buffer (ref-counted), so the tensor itself is disposed here.
      const init = tf.tensor(values, shape, 'float32')
      this.vars.set(name, tf.variable(init, true))
      init.dispose()
      layout.push({ name, shape, offset, size })
      offset += size
    }
    this.names = layout.map((s) => s.name)
    this.layout = layout
    this.size = offset
  }

  get(name: string): tf.Variable {
    const v = this.vars.get(name)
    if (v == null) throw new Error(`no parameter named ${name}`)
    return v
  }

  has(name: string): boolean {
    return this.vars.has(name)
  }

  /** The variables as a Params record (what a forward function reads by default). */
  tensors(): Params {
    const out: Params = {}
    for (const [k, v] of this.vars) out[k] = v
    return out
  }

  /** Copy the values out: `{name: Float32Array}` (checkpoints, export). */
  toFlat(): Record<string, Float32Array> {
    const out: Record<string, Float32Array> = {}
    for (const [k, v] of this.vars) out[k] = Float32Array.from(v.dataSync() as Float32Array)
    return out
  }

  /** Load values from `{name: Float32Array}`; every parameter must be present with the right size. */
  loadFlat(values: Record<string, Float32Array>): void {
    for (const slot of this.layout) {
      const arr = values[slot.name]
      if (arr == null) throw new Error(`checkpoint lacks parameter ${slot.name}`)
      if (arr.length !== slot.size) {
        throw new Error(`parameter ${slot.name}: expected ${slot.size} values, got ${arr.length}`)
      }
    }
    const extra = Object.keys(values).filter((k) => !this.vars.has(k))
    if (extra.length > 0) throw new Error(`checkpoint has unknown parameters: ${extra.join(', ')}`)
    for (const slot of this.layout) {
      const v = this.get(slot.name)
      tf.tidy(() => v.assign(tf.tensor(values[slot.name], slot.shape, 'float32')))
    }
  }

  /** Pack tensors (values or gradients) keyed like this set into one flat array at `layout` offsets. */
  pack(ts: Params, out: Float32Array = new Float32Array(this.size)): Float32Array {
    if (out.length < this.size) throw new Error(`pack: buffer of ${out.length} < ${this.size}`)
    for (const slot of this.layout) {
      const t = ts[slot.name]
      if (t == null) throw new Error(`pack: missing ${slot.name}`)
      out.set(t.dataSync() as Float32Array, slot.offset)
    }
    return out
  }

  /** Inverse of `pack`: new tensors (caller disposes) shaped like the parameters. */
  unpack(flat: Float32Array): Params {
    const out: Params = {}
    for (const slot of this.layout) {
      out[slot.name] = tf.tensor(flat.subarray(slot.offset, slot.offset + slot.size), slot.shape, 'float32')
    }
    return out
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose()
    this.vars.clear()
  }
}

/** Plain SGD: p ← p − lr·g, for every parameter that has a gradient. All on tensors (no sync). */
export function sgdStep(params: ParamSet, grads: Params, lr: number): void {
  tf.tidy(() => {
    const rate = tf.scalar(-lr)
    for (const name of params.names) {
      const g = grads[name]
      if (g == null) continue
      const v = params.get(name)
      v.assign(tf.add(v, tf.mul(g, rate)))
    }
  })
}
