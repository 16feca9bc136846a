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
 * A highland stream of an array's (or any iterable's) items, one per pull. `_(array)` would copy the array into the
 * stream's buffer and `splice(0, 1)` it on every pull: O(n²), measured at 0.2 ms per item for a
 * 3,000-utterance data dir (most of `ktp features`' time after the DSP). An iterator does not.
 */
export function arrayStream<T>(xs: Iterable<T>): Highland.Stream<T> {
  return _(xs[Symbol.iterator]())
}

/**
 * `s.map((x) => _(f(x))).parallel(n)` without a stream per item: up to `n` calls of `f` are in
 * flight, results come out in input order. Errors of the source and errors `f` throws before
 * returning its promise are passed on at once, as highland's parallel passes on the errors of
 * its stream of streams; a rejected promise takes its item's place. What it saves: highland
 * hands each promise's result over through its own stream and a setImmediate, about a tenth of
 * `ktp features`' time over thousands of short utterances.
 */
export function mapOrdered<A, B>(src: Highland.Stream<A>, f: (x: A) => Promise<B>, n: number): Highland.Stream<B> {
  interface Run {
    settled: boolean
    failed: boolean
    value?: B
    err?: unknown
  }
  const running: Run[] = []
  let ended = false
  let reading = false
  return _<B>((push, next) => {
    // results the head of the line was waiting for, as they are in order
    const flush = () => {
      while (running.length > 0 && running[0].settled) {
        const r = running.shift() as Run
        if (r.failed) push(r.err as Error)
        else push(null, r.value as B)
      }
    }
    const settle = (run: Run) => {
      run.settled = true
      if (running[0] === run) {
        flush()
        next()
      }
    }
    if (running.length < n && !ended && !reading) {
      reading = true
      src.pull((err, x) => {
        reading = false
        if (err) push(err)
        else if (x === _.nil) ended = true
        else {
          let p: Promise<B> | undefined
          try {
            p = f(x as A)
          } catch (e) {
            push(e as Error)
          }
          if (p) {
            const run: Run = { settled: false, failed: false }
            running.push(run)
            p.then(
              (v) => {
                run.value = v
                settle(run)
              },
              (e) => {
                run.failed = true
                run.err = e
                settle(run)
              },
            )
          }
        }
        next()
      })
    } else if (running.length === 0 && ended) push(null, _.nil)
  })
}
