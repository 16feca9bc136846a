import t from 'tap'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { type Recipe, runRecipe, planOrder } from '../pipeline/recipes/runner.js'
import { tmp, uttList, writeFeatures } from './helpers.js'

t.test('a rerun does nothing; a changed option reruns that step and what depends on its output', async (t) => {
  const dir = tmp('ktp-recipe-')
  const p = (n: string) => join(dir, n)
  writeFeatures(
    p('in.arrow'),
    uttList(6, () => 3),
    2,
  )
  const calls: string[] = []
  const make = (scale: number, suffix: string): Recipe => ({
    name: 'toy',
    steps: [
      // declared out of order on purpose: the planner orders by file dependencies
      {
        name: 'sum-b',
        inputs: [p('b.txt')],
        outputs: [p('sum-b.txt')],
        config: {},
        fn: async () => {
          calls.push('sum-b')
          writeFileSync(p('sum-b.txt'), `sum of ${readFileSync(p('b.txt'), 'utf8')}`)
        },
      },
      {
        name: 'copy',
        cmd: ['cat', p('in.arrow'), '-o', p('copy.arrow'), '--quiet'],
        inputs: [p('in.arrow')],
        outputs: [p('copy.arrow')],
      },
      {
        name: 'a',
        inputs: [p('copy.arrow')],
        outputs: [p('a.txt')],
        config: { scale },
        fn: async () => {
          calls.push('a')
          writeFileSync(p('a.txt'), String(2 * scale))
        },
      },
      {
        name: 'b',
        inputs: [p('copy.arrow')],
        outputs: [p('b.txt')],
        config: { suffix },
        fn: async () => {
          calls.push('b')
          writeFileSync(p('b.txt'), `b${suffix}`)
        },
      },
    ],
  })
  t.same(
    planOrder(make(1, 'x')).map((s) => s.name),
    ['copy', 'b', 'sum-b', 'a'],
  )
  const lines: string[] = []
  const log = (l: string) => lines.push(l)
  const first = await runRecipe(make(1, 'x'), { out: dir, log })
  t.same(
    first.map((o) => o.state),
    ['ran', 'ran', 'ran', 'ran'],
  )
  t.same(calls.sort(), ['a', 'b', 'sum-b'])
  calls.length = 0
  const second = await runRecipe(make(1, 'x'), { out: dir, log })
  t.same(
    second.map((o) => o.state),
    ['up-to-date', 'up-to-date', 'up-to-date', 'up-to-date'],
    'nothing to do',
  )
  t.same(calls, [])
  const third = await runRecipe(make(3, 'x'), { out: dir, log })
  t.same(calls, ['a'], 'only the step whose option changed')
  t.equal(third.find((o) => o.name === 'a')?.state, 'ran')
  calls.length = 0
  await runRecipe(make(3, 'y'), { out: dir, log })
  t.same(calls.sort(), ['b', 'sum-b'], 'a changed output reruns its consumer')
  calls.length = 0
  const dry = await runRecipe(make(5, 'y'), { out: dir, log, dryRun: true })
  t.same(calls, [], 'dry run runs nothing')
  t.same(
    dry.map((o) => o.state),
    ['up-to-date', 'up-to-date', 'up-to-date', 'would-run'],
  )
  t.match(lines.join('\n'), /a\s+would run \(command or inputs changed\)/)
})

t.test('a failing step stops its dependents, not its siblings', async (t) => {
  const dir = tmp('ktp-recipe-')
  const p = (n: string) => join(dir, n)
  const r: Recipe = {
    name: 'fail',
    steps: [
      { name: 'bad', cmd: ['info', p('missing.arrow')], inputs: [], outputs: [p('x')] },
      { name: 'after-bad', inputs: [p('x')], outputs: [p('y')], fn: async () => writeFileSync(p('y'), '') },
      { name: 'report', inputs: [p('y')], outputs: [p('r')], fn: async () => writeFileSync(p('r'), '') },
      { name: 'sibling', inputs: [], outputs: [p('z')], fn: async () => writeFileSync(p('z'), '') },
    ],
  }
  const out = await runRecipe(r, { out: dir, log: () => {} })
  t.same(
    out.map((o) => [o.name, o.state]),
    [
      ['bad', 'failed'],
      ['after-bad', 'skipped'],
      ['report', 'skipped'],
      ['sibling', 'ran'],
    ],
  )
  t.equal(out[2].reason, 'bad failed', 'a failure stops everything downstream, not only the next step')
  t.notOk(existsSync(p('r')))
  t.match(readFileSync(join(dir, 'log', 'bad.log'), 'utf8'), /no such file/)
})

/** The message a promise is rejected with ('' if it resolves). */
async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return ''
  } catch (err) {
    return (err as Error).message
  }
}

t.test(
  "one run per output directory: a second concurrent run is refused, a dead owner's lock is taken over",
  async (t) => {
    const dir = tmp('ktp-recipe-lock-')
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const slow: Recipe = {
      name: 'slow',
      steps: [
        {
          name: 'wait',
          inputs: [],
          outputs: [join(dir, 'w')],
          config: {},
          fn: async () => {
            await gate
            writeFileSync(join(dir, 'w'), '')
          },
        },
      ],
    }
    const first = runRecipe(slow, { out: dir, log: () => {} })
    await new Promise((r) => setTimeout(r, 50))
    // another process holds it: the child below is alive while we try
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)'])
    try {
      t.match(
        await failure(runRecipe(slow, { out: dir, log: () => {} })),
        /in use by another ktp run \(pid \d+\)/,
        'same process, second runner',
      )
    } finally {
      release()
    }
    t.same(
      (await first).map((o) => o.state),
      ['ran'],
    )
    t.notOk(existsSync(join(dir, '.ktp-lock')), 'released after the run')
    writeFileSync(join(dir, '.ktp-lock'), `${child.pid}\n`)
    t.match(await failure(runRecipe(slow, { out: dir, log: () => {} })), `pid ${child.pid}`, 'a live owner keeps it')
    child.kill('SIGKILL')
    await new Promise((r) => child.once('exit', r))
    const again = await runRecipe(slow, { out: dir, log: () => {} })
    t.same(
      again.map((o) => o.state),
      ['up-to-date'],
      "a dead owner's lock is taken over",
    )
    t.ok((await runRecipe(slow, { out: dir, dryRun: true, log: () => {} })).length, 'dry runs take no lock')
  },
)
