// The house rules of the source tree (docs/ARCHITECTURE.md): imports run one way, down the floors,
// with no cycles; every stage is one folder holding stage.ts and command.ts and nothing else.
// Type-only and dynamic imports count: a lazily loaded module is still a dependency.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import t from 'tap'
import { ROOT } from './helpers.js'

/** The floors, top first. A file may import only from its own floor or the floors below it. */
const FLOORS: [string, RegExp][] = [
  ['cli', /^pipeline\/cli\//],
  ['recipes', /^pipeline\/recipes\//],
  ['stages', /^stages\/(index\.ts$|[^/]+\/(stage|command)\.ts$)/],
  ['train', /^stages\/train\//],
  ['cores', /^stages\/(nn|hmm|dsp|audio|formats|scoring|web)\//],
  ['io', /^pipeline\/io\//],
  ['schemas', /^schemas\//],
]
const CORE_FOLDERS = new Set(['nn', 'hmm', 'dsp', 'audio', 'formats', 'scoring', 'train', 'web'])

function floorOf(file: string): number {
  const i = FLOORS.findIndex(([, re]) => re.test(file))
  return i < 0 ? -1 : FLOORS.length - 1 - i
}

function sources(dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(join(ROOT, dir))) {
    const rel = `${dir}/${e}`
    if (statSync(join(ROOT, rel)).isDirectory()) out.push(...sources(rel))
    else if (e.endsWith('.ts') && !e.endsWith('.d.ts')) out.push(rel)
  }
  return out
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g

/** Relative imports of `file`, resolved to repository paths of .ts sources. */
export function importsOf(file: string, text: string): string[] {
  const out: string[] = []
  for (const m of text.matchAll(IMPORT)) {
    const spec = (m[1] ?? m[2]).replace(/\.js$/, '.ts')
    const target = normalize(join(dirname(file), spec))
      .split('\\')
      .join('/')
    out.push(target.endsWith('.ts') ? target : `${target}/index.ts`)
  }
  return out
}

const files = ['pipeline', 'stages', 'schemas'].flatMap(sources)
const edges = new Map(files.map((f) => [f, importsOf(f, readFileSync(join(ROOT, f), 'utf8'))]))

t.test('every source file sits on a floor', async (t) => {
  t.same(
    files.filter((f) => floorOf(f) < 0),
    [],
    'files outside every floor (stages/<name>/ may hold only stage.ts and command.ts)',
  )
})

t.test('no import runs up the floors', async (t) => {
  const upward: string[] = []
  for (const [f, ts] of edges) for (const to of ts) if (floorOf(to) > floorOf(f)) upward.push(`${f} -> ${to}`)
  t.same(upward, [], 'upward imports')
})

t.test('every relative import names an existing source', async (t) => {
  const missing: string[] = []
  for (const [f, ts] of edges) for (const to of ts) if (!existsSync(join(ROOT, to))) missing.push(`${f} -> ${to}`)
  t.same(missing, [], 'imports of files that do not exist')
})

t.test('no import cycles', async (t) => {
  // Tarjan's strongly connected components; any component of two or more files is a cycle.
  let next = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const cycles: string[][] = []
  const visit = (v: string): void => {
    index.set(v, next)
    low.set(v, next++)
    stack.push(v)
    onStack.add(v)
    for (const w of edges.get(v) ?? []) {
      if (!edges.has(w)) continue
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        c.push(w)
      } while (w !== v)
      if (c.length > 1) cycles.push(c.sort())
    }
  }
  for (const v of edges.keys()) if (!index.has(v)) visit(v)
  t.same(cycles, [], 'import cycles')
})

t.test('one stage, one folder: stage.ts and command.ts', async (t) => {
  const loose = readdirSync(join(ROOT, 'stages')).filter(
    (e) => e !== 'index.ts' && !statSync(join(ROOT, 'stages', e)).isDirectory(),
  )
  t.same(loose, [], 'loose files at the top of stages/')
  for (const d of readdirSync(join(ROOT, 'stages'))) {
    if (CORE_FOLDERS.has(d) || !statSync(join(ROOT, 'stages', d)).isDirectory()) continue
    t.ok(existsSync(join(ROOT, 'stages', d, 'command.ts')), `stages/${d}/ has its command.ts`)
    t.same(
      readdirSync(join(ROOT, 'stages', d)).filter((f) => f !== 'stage.ts' && f !== 'command.ts'),
      [],
      `stages/${d}/ holds nothing but stage.ts and command.ts`,
    )
  }
})

t.test('the checker itself sees imports of every form', async (t) => {
  const text = [
    "import { a } from '../io/x.js'",
    "import type { B } from './y.js'",
    "export { c } from '../../schemas/z.js'",
    "const m = await import('../recipes/w.js')",
    "import {\n  d,\n  e,\n} from './v.js'",
  ].join('\n')
  t.same(importsOf('pipeline/cli/main.ts', text).sort(), [
    'pipeline/cli/v.ts',
    'pipeline/cli/y.ts',
    'pipeline/io/x.ts',
    'pipeline/recipes/w.ts',
    'schemas/z.ts',
  ])
  t.equal(floorOf('pipeline/cli/main.ts') > floorOf('pipeline/recipes/fsdd.ts'), true, 'cli above recipes')
  t.equal(floorOf('stages/splice/stage.ts') > floorOf('stages/train/trainer.ts'), true, 'stages above train')
  t.equal(floorOf('stages/train/trainer.ts') > floorOf('stages/nn/ops.ts'), true, 'train above cores')
  t.equal(floorOf('stages/nn/ops.ts') > floorOf('pipeline/io/run-stage.ts'), true, 'cores above io')
  t.equal(floorOf('pipeline/io/run-stage.ts') > floorOf('schemas/kinds.ts'), true, 'io above schemas')
  t.equal(floorOf('stages/splice/helper.ts'), -1, 'a third file in a stage folder is on no floor')
  t.equal(relative(ROOT, join(ROOT, 'x')), 'x')
})
