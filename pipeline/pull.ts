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
