import _ from 'highland'

/**
 * Turn a highland stream into a pull function for async code that must walk several streams in
 * lockstep (features with their soft targets): each call yields the next value, `null` at the end,
 * and rejects on a stream error. Backpressure holds: nothing is read ahead.
 */
export function puller<T>(s: Highland.Stream<T>): () => Promise<T | null> {
  let ended = false
  return () =>
    new Promise((resolve, reject) => {
      if (ended) return resolve(null)
      s.pull((err, x) => {
        if (err) return reject(err)
        if (x === _.nil) {
          ended = true
          return resolve(null)
        }
        resolve(x as T)
      })
    })
}

/**
 * A highland stream of an array's items, one per pull. `_(array)` would copy the array into the
 * stream's buffer and `splice(0, 1)` it on every pull: O(n²), measured at 0.2 ms per item for a
 * 3,000-utterance data dir (most of `ktp features`' time after the DSP). An iterator does not.
 */
export function arrayStream<T>(xs: readonly T[]): Highland.Stream<T> {
  return _(xs.values())
}
