// The design notes the code cites are in the repository: every `docs/NAME.md §N` in a source comment
// names a doc that exists and a section "## N." in it, and no comment cites a notes file that a
// clone does not have (DESIGN.md, a bare CONVENTIONS.md).
import t from 'tap'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from './helpers.js'

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((e) => {
    const rel = `${dir}/${e}`
    if (statSync(join(ROOT, rel)).isDirectory()) return e === 'results' ? [] : sources(rel)
    return e.endsWith('.ts') ? [rel] : []
  })
}

// (this file names the patterns it looks for)
const files = ['pipeline', 'stages', 'schemas', 'bench', 'test']
  .flatMap(sources)
  .filter((f) => f !== 'test/doc-refs.test.ts')

t.test('cited docs and sections exist', async (t) => {
  let cited = 0
  for (const f of files) {
    const text = readFileSync(join(ROOT, f), 'utf8')
    for (const m of text.matchAll(/docs\/([A-Z]+\.md)((?:,? §\d+)*)/g)) {
      cited++
      const doc = join(ROOT, 'docs', m[1])
      if (!existsSync(doc)) {
        t.fail(`${f} cites docs/${m[1]}, which does not exist`)
        continue
      }
      const md = readFileSync(doc, 'utf8')
      for (const s of m[2].matchAll(/§(\d+)/g))
        t.ok(new RegExp(`^## ${s[1]}\\. `, 'm').test(md), `${f}: docs/${m[1]} has a section ${s[1]}`)
    }
    const stray = text.match(/(?<![\w/])(DESIGN|CONVENTIONS)\.md/g)
    t.same(stray, null, `${f}: cites notes by a path inside the repository`)
  }
  t.ok(cited >= 10, `the sources cite the docs (${cited} citations)`)
})
