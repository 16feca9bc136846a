// The bad-input corpus (fixtures/bad/cases.json): every case gets the right exit code, a message
// naming the file and/or utterance, no crash (no "internal error", no stack trace), no output
// presented as complete when the run failed, and — where only some utterances were bad — the
// others written. Cases with the same command share one ktp process (e.g. one `features` run over
// a data dir of 11 bad recordings and 2 good ones), and two processes run at a time.
import t from 'tap'
import { spawn } from 'node:child_process'
import {
  chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync,
} from 'node:fs'
import { basename, dirname, join, relative } from 'node:path'
import { CLI, ROOT, tmp } from './helpers.js'
import { openArrow } from '../pipeline/arrow-source.js'
import { puller } from '../pipeline/pull.js'
import { KtpError } from '../schemas/errors.js'
import { uttId } from '../schemas/utterance.js'
import { parseKaldiIntVectors, parseKaldiMatrices } from '../stages/formats/kaldi-text.js'

const BAD = join(ROOT, 'fixtures', 'bad')

interface Expect {
  exit?: number
  stderr?: string
  stderrAlso?: string
  outputUtts?: { file: string; utts: string[] }
  noOutput?: string[]
  absent?: string[]
  writesOnlyUnder?: string
  jsonEquals?: [string, string, unknown][]
  emptyStdout?: boolean
  throws?: string
  message?: string
}
interface Case {
  name: string
  covers: string
  command?: string[]
  setup?: { unreadable?: string; copy?: [string, string][] }
  library?: 'parseKaldiMatrices' | 'parseKaldiIntVectors'
  file?: string
  text?: string
  source?: string
  expect: Expect
}

const table = JSON.parse(readFileSync(join(BAD, 'cases.json'), 'utf8')) as { cases: Case[] }
const cases = table.cases

function fill(s: string, vars: Record<string, string>): string {
  return s.replace(/\{(bad|tmp|out)\}/g, (m, k: string) => vars[k] ?? m)
}

/** Data dirs (dd-*) and *.tmpl files hold {bad}/{tmp} placeholders: copy them into the work dir, filled in. */
function materialise(work: string, vars: Record<string, string>): void {
  for (const name of readdirSync(BAD)) {
    const src = join(BAD, name)
    if (name.startsWith('dd-') && statSync(src).isDirectory()) {
      mkdirSync(join(work, name))
      for (const f of readdirSync(src)) writeFileSync(join(work, name, f), fill(readFileSync(join(src, f), 'utf8'), vars))
    } else if (name.endsWith('.tmpl')) {
      writeFileSync(join(work, basename(name, '.tmpl')), fill(readFileSync(src, 'utf8'), vars))
    }
  }
}

function listFiles(dir: string, base = dir, out: string[] = []): string[] {
  if (!existsSync(dir)) return out
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    out.push(relative(base, p))
    if (e.isDirectory()) listFiles(p, base, out)
  }
  return out
}

async function readUtts(path: string): Promise<string[]> {
  const a = await openArrow(path, [])
  const next = puller(a.stream())
  const utts: string[] = []
  for (let b = await next(); b; b = await next()) utts.push(uttId(b))
  return utts
}

interface Run {
  vars: Record<string, string>
  code: number | null
  stdout: string
  stderr: string
  ms: number
  before: string[]
  after: string[]
  skip?: string
}

function runKtp(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c) => (stdout += c))
    child.stderr.on('data', (c) => (stderr += c))
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000)
    child.on('close', (code) => (clearTimeout(timer), resolve({ code, stdout, stderr })))
  })
}

async function execute(c: Case): Promise<Run> {
  const work = tmp('ktp-bad-')
  const vars = { bad: BAD, tmp: work, out: join(work, 'out') }
  materialise(work, vars)
  mkdirSync(vars.out)
  let skip: string | undefined
  for (const [from, to] of c.setup?.copy ?? []) {
    mkdirSync(dirname(fill(to, vars)), { recursive: true })
    copyFileSync(fill(from, vars), fill(to, vars))
  }
  if (c.setup?.unreadable) {
    const p = fill(c.setup.unreadable, vars)
    copyFileSync(join(BAD, 'audio', 'good1.wav'), p)
    chmodSync(p, 0o000)
    try {
      readFileSync(p)
      skip = 'chmod 000 does not stop this user from reading (running as root?): the unreadable-file case cannot be staged here'
    } catch { /* unreadable, as wanted */ }
  }
  const before = listFiles(work)
  if (skip) return { vars, code: null, stdout: '', stderr: '', ms: 0, before, after: before, skip }
  const t0 = Date.now()
  const r = await runKtp(c.command!.map((a) => fill(a, vars)), work)
  return { vars, ...r, ms: Date.now() - t0, before, after: listFiles(work) }
}

/** Run the distinct commands, `jobs` at a time. */
async function runAll(groups: Case[][], jobs: number): Promise<Run[]> {
  const results: Run[] = new Array(groups.length)
  let next = 0
  await Promise.all(Array.from({ length: jobs }, async () => {
    for (let i = next++; i < groups.length; i = next++) results[i] = await execute(groups[i][0])
  }))
  return results
}

const byCommand = new Map<string, Case[]>()
for (const c of cases) {
  if (!c.command) continue
  const key = JSON.stringify([c.command, c.setup ?? null])
  if (!byCommand.has(key)) byCommand.set(key, [])
  byCommand.get(key)!.push(c)
}
const groups = [...byCommand.values()]

t.test('the table', async (t) => {
  t.ok(cases.length >= 30, `${cases.length} cases`)
  t.equal(new Set(cases.map((c) => c.name)).size, cases.length, 'case names are unique')
  for (const c of cases) t.ok(c.command || c.library, `${c.name}: a command or a library call`)
})

t.test('library cases', async (t) => {
  for (const c of cases.filter((x) => x.library)) {
    const vars = { bad: BAD, tmp: '', out: '' }
    const text = c.file ? readFileSync(fill(c.file, vars), 'utf8') : c.text!
    const source = c.file ? fill(c.file, vars) : c.source!
    const fn = c.library === 'parseKaldiMatrices' ? parseKaldiMatrices : parseKaldiIntVectors
    let err: unknown
    try {
      fn(text, source)
    } catch (e) {
      err = e
    }
    t.ok(err instanceof KtpError, `${c.name}: throws ${c.expect.throws}`)
    t.match((err as Error)?.message ?? '', new RegExp(c.expect.message!), `${c.name}: message`)
  }
})

t.test('command cases', async (t) => {
  const t0 = Date.now()
  const runs = await runAll(groups, 2)
  t.comment(`${groups.length} ktp processes for ${cases.filter((c) => c.command).length} cases in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  for (let g = 0; g < groups.length; g++) {
    const run = runs[g]
    for (const c of groups[g]) {
      await t.test(c.name, async (t) => {
        if (run.skip) return t.skip(`${c.name}: ${run.skip}`)
        const e = c.expect
        const f = (s: string) => fill(s, run.vars)
        const ctx = `\n--- ktp ${c.command!.map(f).join(' ')}\n${run.stderr}`
        if (e.exit !== undefined) t.equal(run.code, e.exit, `exit ${e.exit}${ctx}`)
        t.notMatch(run.stderr, /internal error/, 'no internal error')
        t.notMatch(run.stderr, /\n\s+at .+:\d+:\d+\)?\n/, 'no stack trace')
        if (e.stderr) t.match(run.stderr, new RegExp(f(e.stderr)), `stderr names the culprit: /${e.stderr}/`)
        if (e.stderrAlso) t.ok(run.stderr.includes(f(e.stderrAlso)), `stderr has '${e.stderrAlso}'`)
        for (const p of e.noOutput ?? []) t.notOk(existsSync(f(p)), `no ${relative(run.vars.tmp, f(p))} left behind`)
        for (const p of e.absent ?? []) t.notOk(existsSync(f(p)), `${f(p)} was not created`)
        if (e.emptyStdout) t.equal(run.stdout, '', 'nothing on stdout')
        if (e.outputUtts) {
          const out = f(e.outputUtts.file)
          t.notOk(existsSync(`${out}.partial`), 'finished: no partial state left')
          t.same(await readUtts(out), e.outputUtts.utts.map(f), 'the good utterances are written, in order, and only they')
        }
        for (const [file, path, want] of e.jsonEquals ?? []) {
          const j = JSON.parse(readFileSync(f(file), 'utf8'))
          t.same(path.split('.').reduce((o: any, k) => o?.[k], j), want, `${basename(f(file))}: ${path} = ${JSON.stringify(want)}`)
        }
        if (e.writesOnlyUnder) {
          const under = relative(run.vars.tmp, f(e.writesOnlyUnder))
          const fresh = run.after.filter((p) => !run.before.includes(p))
            .filter((p) => !(p === under || p.startsWith(`${under}/`)) && !/^dd-[^/]+\/\.ktp-audio-hashes\.json$/.test(p))
          t.same(fresh, [], `nothing written outside ${under}/ (besides the data dir's audio-hash cache)`)
        }
      })
    }
  }
})
