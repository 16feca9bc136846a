import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'

// Issue 17: the README's commands write data/ and exp/ inside the clone; `git status` must not
// offer them (or node_modules, a symlink included) for a commit.
t.test('.gitignore keeps the README outputs and node_modules out of commits', async (t) => {
  const lines = readFileSync(join(import.meta.dirname, '..', '.gitignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
  for (const want of ['/data/', '/exp/', 'node_modules']) t.ok(lines.includes(want), `.gitignore lists ${want}`)
  t.notOk(lines.includes('node_modules/'), 'node_modules without a slash: the pattern also matches a symlink')
})
