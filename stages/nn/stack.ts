import type { Model } from './model.js'

/**
 * Copy parameters between models by name where shapes agree: the glue of layer-wise training
 * (an RBM stack into a DNN, a grown network from its smaller self). `skip` names parameters that
 * must stay freshly initialised (e.g. a new output layer). Returns the names copied.
 */
export function copyMatchingParams(
  from: Record<string, Float32Array>,
  to: Model,
  skip: (name: string) => boolean = () => false,
): string[] {
  const values = to.params.toFlat()
  const copied: string[] = []
  for (const slot of to.params.layout) {
    const src = from[slot.name]
    if (!src || skip(slot.name) || src.length !== slot.size) continue
    values[slot.name] = src
    copied.push(slot.name)
  }
  to.params.loadFlat(values)
  return copied
}
