// The bad-input corpus (fixtures/bad/cases.json): every case gets the right exit code, a message
// naming the file and/or utterance, no crash (no "internal error", no stack trace), no output
// presented as complete when the run failed, and — where only some utterances were bad — the
// others written. Cases with the same command share one run (e.g. one `features` run over a data
// dir of 11 bad recordings and 2 good ones).
//
// Cost: a ktp process costs about a second of CPU, mostly module loading. So only the cases marked
// `"process": true` (the batch runs, the security runs, one case per crash-prone reader) run as
// real `ktp` processes; all the others run one after the other in ONE helper process that loads
// the command modules once and drives them through yargs as cli.ts does (same command modules,
// handlers, error reporting and exit codes; a yargs usage error, process.exit(2) in the CLI, is
// recorded as exit code 2).
import t from 'tap'
import { spawn } from 'node:child_process'
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { basename, dirname, join, relative } from 'node:path'
import { pathToFileURL } from 'node:url'
import { CLI, ROOT, tmp } from './helpers.js'
import { openArrow } from '../pipeline/io/arrow-source.js'
import { puller } from '../pipeline/io/pull.js'
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
  /** Run as a real ktp process (otherwise in the shared helper process). */
  process?: boolean
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
      for (const f of readdirSync(src))
        writeFileSync(join(work, name, f), fill(readFileSync(join(src, f), 'utf8'), vars))
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

interface Outcome {
  code: number | null
  stdout: string
  stderr: string
  ms: number
}

interface Run extends Outcome {
  vars: Record<string, string>
  before: string[]
  after: string[]
  skip?: string
}

interface Prepared {
  c: Case
  vars: Record<string, string>
  args: string[]
  before: string[]
  skip?: string
}

function prepare(c: Case): Prepared {
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
      skip =
        'chmod 000 does not stop this user from reading (running as root?): the unreadable-file case cannot be staged here'
    } catch {
      /* unreadable, as wanted */
    }
  }
  return { c, vars, args: c.command!.map((a) => fill(a, vars)), before: listFiles(work), skip }
}

/**
 * The helper process: loads ktp's command modules from dist/ once, then runs each job's argv
 * through yargs as cli.ts's main() does, in the job's work dir, capturing stdout/stderr and the
 * exit code. Results go to a JSON file (its own stdout/stderr are what it captures).
 */
const DRIVER = `
import { readFileSync, writeFileSync } from 'node:fs'
const [jobsFile, resultsFile, root] = process.argv.slice(1)
const yargs = (await import(root + '/node_modules/yargs/index.mjs')).default
const { commands } = await import(root + '/dist/pipeline/cli/commands.js')
const { STDIO_ARG } = await import(root + '/dist/pipeline/io/command.js')
const jobs = JSON.parse(readFileSync(jobsFile, 'utf8'))
const results = []
const realOut = process.stdout.write, realErr = process.stderr.write
for (const job of jobs) {
  let stdout = '', stderr = '', code
  const sink = (add) => (c, ...r) => { add(String(c)); const cb = r.find((x) => typeof x === 'function'); if (cb) cb(); return true }
  process.stdout.write = sink((c) => (stdout += c))
  process.stderr.write = sink((c) => (stderr += c))
  process.exitCode = undefined
  process.chdir(job.cwd)
  const t0 = Date.now()
  try {
    const entry = commands.find((c) => c.name === job.args[0])
    let y = yargs(job.args.map((a) => (a === '-' ? STDIO_ARG : a))).scriptName('ktp').strict()
      .fail((msg, e) => { if (e) throw e; process.stderr.write('ktp: usage error: ' + msg + '\\n'); code = 2 })
    if (entry) y = y.command(await entry.load())
    await y.parseAsync()
  } catch (e) {
    stderr += 'ktp: internal error: ' + ((e && e.stack) || String(e)) + '\\n'
    code = 2
  }
  process.stdout.write = realOut
  process.stderr.write = realErr
  results.push({ code: code ?? (process.exitCode === undefined ? 0 : Number(process.exitCode)), stdout, stderr, ms: Date.now() - t0 })
}
process.exitCode = 0
writeFileSync(resultsFile, JSON.stringify(results))
`

function runKtp(args: string[], cwd: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const t0 = Date.now()
    const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c) => (stdout += c))
    child.stderr.on('data', (c) => (stderr += c))
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr, ms: Date.now() - t0 })
    })
  })
}

async function runInDriver(ps: Prepared[]): Promise<Outcome[]> {
  if (ps.length === 0) return []
  const dir = tmp('ktp-bad-driver-')
  const jobsFile = join(dir, 'jobs.json')
  const resultsFile = join(dir, 'results.json')
  writeFileSync(jobsFile, JSON.stringify(ps.map((p) => ({ args: p.args, cwd: p.vars.tmp }))))
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', DRIVER, jobsFile, resultsFile, pathToFileURL(ROOT).href],
      { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
    )
    let stderr = ''
    child.stderr.on('data', (c) => (stderr += c))
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stderr })
    })
  })
  if (!existsSync(resultsFile)) throw new Error(`the helper process died (exit ${r.code}): ${r.stderr}`)
  return JSON.parse(readFileSync(resultsFile, 'utf8')) as Outcome[]
}

/** The helper process and the real ktp processes run side by side (two processes at a time). */
async function execute(ps: Prepared[]): Promise<Run[]> {
  const runs: Run[] = new Array(ps.length)
  const finish = (i: number, r: Outcome) => {
    runs[i] = { vars: ps[i].vars, ...r, before: ps[i].before, after: listFiles(ps[i].vars.tmp) }
  }
  ps.forEach((p, i) => {
    if (p.skip)
      runs[i] = {
        vars: p.vars,
        code: null,
        stdout: '',
        stderr: '',
        ms: 0,
        before: p.before,
        after: p.before,
        skip: p.skip,
      }
  })
  const procs = ps.map((_, i) => i).filter((i) => !ps[i].skip && ps[i].c.process)
  const inDriver = ps.map((_, i) => i).filter((i) => !ps[i].skip && !ps[i].c.process)
  await Promise.all([
    runInDriver(inDriver.map((i) => ps[i])).then((rs) =>
      rs.forEach((r, k) => {
        finish(inDriver[k], r)
      }),
    ),
    (async () => {
      for (const i of procs) finish(i, await runKtp(ps[i].args, ps[i].vars.tmp))
    })(),
  ])
  return runs
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
  const runs = await execute(groups.map((g) => prepare(g[0])))
  const nproc = groups.filter((g, i) => g[0].process && !runs[i].skip).length
  t.comment(
    `${groups.length} runs (${nproc} ktp processes + 1 helper process) for ${cases.filter((c) => c.command).length} cases in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  )
  const slow = groups
    .map((g, i) => [g[0].name, runs[i].ms] as const)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5)
  t.comment(`slowest: ${slow.map(([n, ms]) => `${n} ${(ms / 1000).toFixed(1)} s`).join(', ')}`)
  for (let g = 0; g < groups.length; g++) {
    const run = runs[g]
    for (const c of groups[g]) {
      await t.test(c.name, { skip: run.skip ? `${c.name}: ${run.skip}` : false }, async (t) => {
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
          t.same(
            await readUtts(out),
            e.outputUtts.utts.map(f),
            'the good utterances are written, in order, and only they',
          )
        }
        for (const [file, path, want] of e.jsonEquals ?? []) {
          const j = JSON.parse(readFileSync(f(file), 'utf8'))
          t.same(
            path.split('.').reduce((o: unknown, k) => (o as Record<string, unknown> | null | undefined)?.[k], j),
            want,
            `${basename(f(file))}: ${path} = ${JSON.stringify(want)}`,
          )
        }
        if (e.writesOnlyUnder) {
          const under = relative(run.vars.tmp, f(e.writesOnlyUnder))
          const fresh = run.after
            .filter((p) => !run.before.includes(p))
            .filter(
              (p) => !(p === under || p.startsWith(`${under}/`)) && !/^dd-[^/]+\/\.ktp-audio-hashes\.json$/.test(p),
            )
          t.same(fresh, [], `nothing written outside ${under}/ (besides the data dir's audio-hash cache)`)
        }
      })
    }
  }
})
