import t from 'tap'
import _ from 'highland'
import { arrayStream, mapOrdered } from '../pipeline/io/pull.js'

/** Every value and error of a stream, in order (errors as `!message`). */
function collect<T>(s: Highland.Stream<T>): Promise<(T | string)[]> {
  const out: (T | string)[] = []
  return new Promise((resolve) => {
    s.consume((err, x, push, next) => {
      if (err) {
        out.push(`!${(err as Error).message}`)
        return next()
      }
      if (x === _.nil) {
        resolve(out)
        return push(null, _.nil)
      }
      out.push(x as T)
      next()
    }).resume()
  })
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

t.test('results in input order whatever order they finish in, at most n in flight', async (t) => {
  for (const n of [1, 2, 3, 8]) {
    let inFlight = 0
    let most = 0
    const xs = Array.from({ length: 30 }, (_, i) => i)
    const got = await collect(
      mapOrdered(
        arrayStream(xs),
        async (x) => {
          inFlight++
          most = Math.max(most, inFlight)
          await sleep((x * 7) % 5)
          inFlight--
          return x * 10
        },
        n,
      ),
    )
    t.same(
      got,
      xs.map((x) => x * 10),
      `n=${n}: in order`,
    )
    t.ok(most <= n && most >= Math.min(n, 2), `n=${n}: ${most} in flight at most`)
  }
})

t.test('a rejection takes its item place; throws and source errors pass on; the stream ends', async (t) => {
  const src = _<number>([1, 2, 3, 4, 5]).map((x) => {
    if (x === 4) throw new Error('source 4')
    return x
  })
  const got = await collect(
    mapOrdered(
      src,
      (x) => {
        if (x === 5) throw new Error('throw 5')
        return x === 2 ? Promise.reject(new Error('reject 2')) : Promise.resolve(x)
      },
      1,
    ),
  )
  t.same(got, [1, '!reject 2', 3, '!source 4', '!throw 5'])
  t.same(await collect(mapOrdered(arrayStream<number>([]), async (x) => x, 2)), [], 'empty input')
})

t.test('the same as map + parallel on a mix of fast and slow items', async (t) => {
  const xs = Array.from({ length: 50 }, (_, i) => i)
  const f = async (x: number) => {
    if (x % 3 === 0) await sleep(1)
    if (x % 11 === 5) throw new Error(`bad ${x}`)
    return -x
  }
  const want = await collect(
    arrayStream(xs)
      .map((x) => _(f(x)))
      .parallel(2),
  )
  t.same(await collect(mapOrdered(arrayStream(xs), f, 2)), want)
})
