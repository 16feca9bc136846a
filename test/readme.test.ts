// README.md, run as a newcomer would: every ```sh block after Quick start, in order, from the top of
// a clean working directory that holds only the bundled fixtures, must exit 0. Quick start is left
// out (CI runs `npm ci` and `npm test` itself; the demo is the fsdd recipe, which recipe.test.ts
// covers); a block opts out with `<!-- readme-test: skip (reason) -->` on the line before its fence;
// ```python runs when pyarrow is importable; other languages (```cron) are text.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CLI, ROOT, tmp } from './helpers.js'

export interface Block {
  lang: string
  code: string
  /** The README heading the block sits under. */
  section: string
  /** 1-based line of the opening fence. */
  line: number
  /** The reason given by a skip marker, if any. */
  skip?: string
}

const SKIP = /^<!--\s*readme-test:\s*skip\s*\((.+)\)\s*-->$/

/** The fenced code blocks of a Markdown text, with their section and skip markers. */
export function readmeBlocks(md: string): Block[] {
  const lines = md.split('\n')
  const blocks: Block[] = []
  let section = ''
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]
    if (l.startsWith('#')) section = l.replace(/^#+\s*/, '')
    const open = /^```(\S*)\s*$/.exec(l)
    if (!open) continue
    const start = i
    const body: string[] = []
    for (i++; i < lines.length && !lines[i].startsWith('```'); i++) body.push(lines[i])
    const before = lines[start - 1]?.trim() ?? ''
    if (before.startsWith('<!--') && before.includes('readme-test') && !SKIP.test(before))
      throw new Error(`README.md:${start}: a readme-test marker must read <!-- readme-test: skip (reason) -->`)
    blocks.push({ lang: open[1], code: body.join('\n'), section, line: start + 1, skip: SKIP.exec(before)?.[1] })
  }
  return blocks
}

t.test('the block reader: languages, sections, skip markers with reasons', async (t) => {
  const md = [
    '## Quick start',
    '```sh',
    'npm ci',
    '```',
    '## A',
    '<!-- readme-test: skip (needs a corpus) -->',
    '```sh',
    'ktp run timit',
    '```',
    '```cron',
    '0 2 * * * x',
    '```',
  ].join('\n')
  t.same(readmeBlocks(md), [
    { lang: 'sh', code: 'npm ci', section: 'Quick start', line: 2, skip: undefined },
    { lang: 'sh', code: 'ktp run timit', section: 'A', line: 7, skip: 'needs a corpus' },
    { lang: 'cron', code: '0 2 * * * x', section: 'A', line: 10, skip: undefined },
  ])
  t.throws(() => readmeBlocks('<!-- readme-test: skip -->\n```sh\nx\n```'), /must read/, 'a marker needs a reason')
})

// the blocks take a few minutes on an idle 2-core machine (README.md states each one's time); the
// margin is for a machine shared with other jobs
t.setTimeout(40 * 60_000)

const README = readFileSync(join(ROOT, 'README.md'), 'utf8')
const blocks = readmeBlocks(README)

/**
 * A clean working directory: the bundled fixtures and nothing else, and a PATH on which `npx ktp`
 * and `ktp` are the built CLI (`npx` in the clone resolves the package's own bin to the same file;
 * the shim saves npm's start-up on every line and any chance of a registry look-up).
 */
function workdir(): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = tmp('ktp-readme-')
  symlinkSync(join(ROOT, 'fixtures'), join(dir, 'fixtures'))
  const bin = join(dir, '.bin')
  mkdirSync(bin)
  const sh = (body: string) => `#!/bin/sh\n${body}\n`
  writeFileSync(join(bin, 'ktp'), sh(`exec "${process.execPath}" "${CLI}" "$@"`))
  writeFileSync(
    join(bin, 'npx'),
    sh(`[ "$1" = ktp ] || { echo "readme test: npx is only for ktp here" >&2; exit 127; }
shift
exec "${process.execPath}" "${CLI}" "$@"`),
  )
  for (const f of ['ktp', 'npx']) chmodSync(join(bin, f), 0o755)
  return { dir, env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } }
}

/** User + system seconds of the children, from bash's `times` (its second line: "0m1.5s 0m0.2s"). */
function childCpu(times: string): number {
  const secs = (s: string) => {
    const m = /^(\d+)m([\d.]+)s$/.exec(s)
    return m ? Number(m[1]) * 60 + Number(m[2]) : Number.NaN
  }
  const [user, sys] = (times.trim().split('\n')[1] ?? '').trim().split(/\s+/)
  return secs(user) + secs(sys)
}

function pyarrowMissing(): string | undefined {
  const r = spawnSync('python3', ['-c', 'import pyarrow, numpy'], { encoding: 'utf8' })
  return r.status === 0 ? undefined : 'pyarrow/numpy are not importable by python3 (pip install pyarrow numpy)'
}

t.test('`npx ktp` resolves to the built CLI inside the clone', async (t) => {
  const r = spawnSync('npx', ['--no-install', 'ktp', '--version'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 })
  t.equal(r.status, 0, r.stderr)
  const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version
  t.equal(r.stdout.trim(), version)
})

t.test('every README command block runs as written, in order, on the bundled data', async (t) => {
  const runnable = blocks.filter((b) => b.section !== 'Quick start' && (b.lang === 'sh' || b.lang === 'python'))
  // a README whose blocks all opted out, or were renamed to another language, would pass silently
  t.ok(runnable.filter((b) => b.lang === 'sh' && !b.skip).length >= 8, 'the README has its runnable sh blocks')
  const { dir, env } = workdir()
  t.comment(`working directory ${dir}`)
  const noPython = pyarrowMissing()
  for (const b of runnable) {
    const name = `README.md:${b.line} (${b.section}, ${b.lang})`
    if (b.skip) {
      t.comment(`skipped ${name}: ${b.skip}`)
      continue
    }
    if (b.lang === 'python' && noPython) {
      t.comment(`skipped ${name}: ${noPython}`)
      continue
    }
    const t0 = Date.now()
    // bash's `times` adds up the CPU time of the block's commands (the README states it, as the
    // wall time depends on what else the machine runs)
    const times = join(dir, '.times')
    const [cmd, args] =
      b.lang === 'python'
        ? ['python3', ['-c', b.code]]
        : ['bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', `${b.code}\ntimes > ${times}`]]
    const r = spawnSync(cmd, args, { cwd: dir, env, encoding: 'utf8', timeout: 15 * 60_000, maxBuffer: 64 << 20 })
    const took = ((Date.now() - t0) / 1000).toFixed(1)
    const cpu = b.lang === 'sh' && r.status === 0 ? `, ${childCpu(readFileSync(times, 'utf8')).toFixed(1)} s CPU` : ''
    t.equal(r.status, 0, `${name} exits 0 (${took} s wall${cpu})`, { stderr: r.stderr.slice(-3000), signal: r.signal })
    if (r.status !== 0) break // the later blocks read what this one writes
  }
})
