// The streaming stages run with a tight V8 heap growth (pipeline/cli/heap-tuning.ts): that the
// flag has the effect it is there for (a heap that tracks the live data, not the garbage), and
// that the `ktp` bin, through its bundle, sets it for those commands only and before they run.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { STREAMING_COMMANDS, v8FlagsFor } from '../pipeline/cli/heap-tuning.js'
import { CLI, ROOT, tmp } from './helpers.js'

const dir = tmp('ktp-heap-tuning-')
const TUNING = join(ROOT, 'dist', 'pipeline', 'cli', 'heap-tuning.js')

t.test('the streaming stages get the flag; training, recipes and no command do not', async (t) => {
  t.same([...STREAMING_COMMANDS].sort(), ['cmvn', 'features', 'infer', 'splice'])
  for (const c of STREAMING_COMMANDS)
    t.same(
      v8FlagsFor(c),
      ['--heap-growing-percent=10', ...(c === 'features' ? ['--semi-space-growth-factor=1'] : [])],
      c,
    )
  for (const c of ['train', 'train-teacher', 'run', 'sweep', 'info', undefined]) t.same(v8FlagsFor(c), [], String(c))
})

t.test('set at run time, the flag keeps a churning heap near its live size', async (t) => {
  // 100k objects kept for the whole run, and a ring of recent ones that live long enough to be
  // promoted to the old generation, then die: the garbage V8's default growth lets pile up
  const churn = join(dir, 'churn.mjs')
  writeFileSync(
    churn,
    `import { getHeapStatistics } from 'node:v8'
const { tuneHeapFor } = await import(${JSON.stringify(TUNING)})
tuneHeapFor(process.argv[2])
const live = Array.from({ length: 100_000 }, (_, i) => ({ i, s: 'k' + i }))
const ring = new Array(100_000)
const sizes = []
for (let i = 0; i < 20_000_000; i++) {
  ring[i % ring.length] = { i, a: [i, i + 1, i + 2] }
  if (i % 20_000 === 0) sizes.push(getHeapStatistics().total_heap_size)
}
// the second half: past start-up, where the growth policy has had its say
console.log(Math.max(...sizes.slice(sizes.length / 2)), live.length)
`,
  )
  const peak = (command: string) => {
    const r = spawnSync(process.execPath, [churn, command], { encoding: 'utf8' })
    t.equal(r.status, 0, r.stderr)
    return Number(r.stdout.split(' ')[0])
  }
  const tuned = peak('features')
  const untuned = peak('train')
  // measured: ~83 MB against ~135 MB with V8's default growth
  t.ok(
    tuned < 0.8 * untuned,
    `heap peak ${(tuned / 2 ** 20).toFixed(0)} MB tuned, ${(untuned / 2 ** 20).toFixed(0)} MB not`,
  )
})

t.test(
  'set at run time, the young generation of features keeps its size however much survives over a run',
  async (t) => {
    // a ring of recent objects outlives a young collection or two, then dies: the survivors V8
    // counts (and grows the young generation by) add up with the length of the run
    const ring = join(dir, 'ring.mjs')
    writeFileSync(
      ring,
      `import { getHeapSpaceStatistics } from 'node:v8'
const { tuneHeapFor } = await import(${JSON.stringify(TUNING)})
const young = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size
tuneHeapFor(process.argv[2])
const start = young()
const ring = new Array(50_000)
let most = start
for (let i = 0; i < 5_000_000; i++) {
  ring[i % ring.length] = { i, s: 'x' + i }
  if (i % 10_000 === 0) most = Math.max(most, young())
}
console.log(start, most)
`,
    )
    const sizes = (command: string) => {
      const r = spawnSync(process.execPath, [ring, command], { encoding: 'utf8' })
      t.equal(r.status, 0, r.stderr)
      return r.stdout.trim().split(' ').map(Number)
    }
    const [start, most] = sizes('features')
    t.equal(
      most,
      start,
      `young generation ${(start / 2 ** 20).toFixed(0)} MB at the start, at most ${(most / 2 ** 20).toFixed(0)} MB`,
    )
    const [trainStart, trainMost] = sizes('splice')
    t.ok(trainMost >= 4 * trainStart, `without the flag (splice) it grows: ${trainStart} → ${trainMost} bytes`)
  },
)

t.test('the ktp bin (bundled) sets the flag for a streaming command before it runs, and only then', async (t) => {
  // node:v8's named exports follow its default export after syncBuiltinESMExports, so the
  // bundle's `import { setFlagsFromString }` gets this recording wrapper
  const spy = join(dir, 'spy.mjs')
  writeFileSync(
    spy,
    `import v8 from 'node:v8'
import { syncBuiltinESMExports } from 'node:module'
const set = v8.setFlagsFromString
v8.setFlagsFromString = (f) => { process.stderr.write('v8-flag ' + f + '\\n'); set(f) }
syncBuiltinESMExports()
`,
  )
  const run = (args: string[]) =>
    spawnSync(process.execPath, ['--import', spy, CLI, ...args], { cwd: ROOT, encoding: 'utf8' }).stderr
  for (const c of STREAMING_COMMANDS) {
    // a missing input fails inside the command: the flag was set before
    const err = run([c, ...(c === 'cmvn' ? ['apply'] : []), join(dir, 'missing'), '--quiet'])
    for (const f of v8FlagsFor(c)) t.match(err, `v8-flag ${f}\n`, c)
  }
  t.notMatch(run(['train', '--help']), 'v8-flag', 'train')
  t.notMatch(run(['--help']), 'v8-flag', 'no command')
})
