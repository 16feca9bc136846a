import t from 'tap'
import { MessageRefs } from '../pipeline/io/message-refs.js'
import { rng } from './helpers.js'

t.test('MessageRefs keeps every ref through growth and lists them in input order', async (t) => {
  const refs = new MessageRefs()
  const n = 5000 // past several doublings of the first 1024 rows
  const r = rng(3)
  // input positions shuffled, as workers finish out of order; three logs, as three resumed runs
  const ords = Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1))
    ;[ords[i], ords[j]] = [ords[j], ords[i]]
  }
  const logOf = (i: number) => `/p/${String(Math.floor((3 * i) / n)).padStart(5, '0')}.log`
  for (const [i, ord] of ords.entries()) refs.push(ord, logOf(i), 2 ** 32 + i * 1000, 100 + (i % 7), 3 * i + 2 ** 31)
  t.equal(refs.size, n)
  const order = refs.byOrd()
  t.same(
    Array.from(order, (i) => refs.ord(i)),
    ords.slice().sort((a, b) => a - b),
    'ascending input positions',
  )
  let bad = 0
  for (const i of order) {
    if (refs.log(i) !== logOf(i) || refs.offset(i) !== 2 ** 32 + i * 1000) bad++
    if (refs.meta(i) !== 100 + (i % 7) || refs.body(i) !== 3 * i + 2 ** 31) bad++
  }
  t.equal(bad, 0, 'log, offsets past 4 GB and lengths past 2 GB read back as pushed')
  t.ok(refs.sameLog(0, 1) && !refs.sameLog(0, n - 1), 'same log by index')
})

t.test('ties in input position (not made by one input) fall back to log, then offset', async (t) => {
  const refs = new MessageRefs()
  refs.push(1, '/b.log', 50, 1, 1)
  refs.push(1, '/a.log', 10, 1, 1)
  refs.push(0, '/b.log', 90, 1, 1)
  refs.push(1, '/b.log', 20, 1, 1)
  t.same(Array.from(refs.byOrd()), [2, 3, 0, 1], 'ord 0, then /b.log (first seen) by offset, then /a.log')
})
