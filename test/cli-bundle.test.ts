// The bundled CLI (dist/pipeline/bundle/, what the `ktp` bin runs after `npm run build`) against the
// modules tsc compiled (dist/pipeline/cli/ktp.js): the same bytes out, in features (one thread and
// the worker pool, whose entry is a bundle entry) and in help; and the bin really runs the bundle,
// without loading Arrow, zod or yargs module by module.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CLI, ROOT, tmp } from './helpers.js'

const UNBUNDLED = join(ROOT, 'dist', 'pipeline', 'cli', 'ktp.js')
const BUNDLE = join(ROOT, 'dist', 'pipeline', 'bundle')
const FSDD = join(ROOT, 'fixtures', 'fsdd', 'recordings')
const dir = tmp('ktp-cli-bundle-')

function run(entry: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(process.execPath, [entry, ...args], { cwd: ROOT, env, maxBuffer: 1 << 28 })
  return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() }
}

/** A data dir of the first n FSDD fixture recordings. */
function dataDir(n: number): string {
  const d = join(dir, 'data')
  mkdirSync(d, { recursive: true })
  const files = readdirSync(FSDD)
    .filter((f) => f.endsWith('.wav'))
    .sort()
    .slice(0, n)
  writeFileSync(join(d, 'wav.scp'), files.map((f) => `${f.replace(/\.wav$/, '')} ${join(FSDD, f)}\n`).join(''))
  writeFileSync(join(d, 'utt2spk'), files.map((f) => `${f.replace(/\.wav$/, '')} spk\n`).join(''))
  return d
}

t.test('npm run build wrote the bundle, its worker entries and source maps into the sources', async (t) => {
  for (const f of ['ktp.js', 'features-worker.js', 'worker-entry.js']) t.ok(existsSync(join(BUNDLE, f)), f)
  const map = JSON.parse(readFileSync(join(BUNDLE, 'ktp.js.map'), 'utf8')) as { sources: string[] }
  t.ok(map.sources.includes('../../../pipeline/cli/ktp.ts'), 'the map points at pipeline/cli/ktp.ts')
})

t.test('bundled and unbundled features give the same bytes, on one thread and on two', async (t) => {
  const data = dataDir(24)
  for (const jobs of ['1', '2']) {
    const outs = [CLI, UNBUNDLED].map((entry, i) => {
      const out = join(dir, `feats-${jobs}-${i}.arrow`)
      const r = run(entry, ['features', data, '--num-mel-bins', '23', '--jobs', jobs, '-o', out, '--quiet'])
      t.equal(r.code, 0, `${entry} --jobs ${jobs}: ${r.stderr}`)
      return readFileSync(out)
    })
    t.ok(outs[0].length > 10_000, 'a real output')
    t.ok(outs[0].equals(outs[1]), `--jobs ${jobs}: byte-identical`)
  }
})

t.test('help and usage errors are the same text', async (t) => {
  for (const args of [['--help'], ['features', '--help'], ['train-student', '--help'], ['features'], ['featurs']]) {
    const [b, u] = [CLI, UNBUNDLED].map((e) => run(e, args))
    t.equal(b.code, u.code, `${args.join(' ')}: exit code`)
    t.equal(b.stdout, u.stdout, `${args.join(' ')}: stdout`)
    t.equal(b.stderr, u.stderr, `${args.join(' ')}: stderr`)
  }
  t.match(run(CLI, ['features']).stderr, /usage error: Not enough non-option arguments/)
})

t.test('the bin loads the bundle, not the packages module by module', async (t) => {
  // A module loader hook that logs every URL Node loads.
  const log = join(dir, 'loaded.txt')
  const hooks = join(dir, 'hooks.mjs')
  writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs'\nexport async function load(url, ctx, next) { appendFileSync(${JSON.stringify(log)}, url + '\\n'); return next(url, ctx) }\n`,
  )
  const register = join(dir, 'register.mjs')
  writeFileSync(register, `import { register } from 'node:module'\nregister(${JSON.stringify(`file://${hooks}`)})\n`)
  const data = dataDir(24)
  const r = run(CLI, ['features', data, '-o', join(dir, 'hooked.arrow'), '--quiet'], {
    ...process.env,
    NODE_OPTIONS: `--import=${register}`,
  })
  t.equal(r.code, 0, r.stderr)
  const urls = readFileSync(log, 'utf8').trim().split('\n')
  t.ok(
    urls.some((u) => u.endsWith('/dist/pipeline/bundle/ktp.js')),
    'ran dist/pipeline/bundle/ktp.js',
  )
  t.same(
    urls.filter((u) => /node_modules\/(apache-arrow|zod|yargs)\//.test(u)),
    [],
    'no Arrow, zod or yargs module from node_modules',
  )
  // Counted in dist/ only: tap's coverage hooks add their own modules to every child process.
  const ours = urls.filter((u) => u.startsWith(`file://${join(ROOT, 'dist')}/`))
  t.ok(
    ours.length >= 2 && ours.length < 25,
    `${ours.length} modules of dist/ loaded (unbundled: 40 and more, and 300 of packages)`,
  )
})

t.test('the bin takes the bundle only when it is at least as new as the compiled modules', async (t) => {
  // The bin alone, beside stand-ins that say which of them ran: a bundle older than the tsc output
  // (tsc run alone after a change) holds stale code.
  const root = join(dir, 'launcher')
  mkdirSync(join(root, 'cli'), { recursive: true })
  mkdirSync(join(root, 'bundle'), { recursive: true })
  writeFileSync(join(root, 'cli', 'main.js'), readFileSync(CLI))
  writeFileSync(join(root, 'cli', 'ktp.js'), "process.stdout.write('compiled')\n")
  writeFileSync(join(root, 'bundle', 'ktp.js'), "process.stdout.write('bundle')\n")
  writeFileSync(join(root, 'package.json'), '{"type":"module"}\n')
  const at = (f: string, s: number) => utimesSync(join(root, f), s, s)
  at('cli/ktp.js', 1_000_000)
  at('bundle/ktp.js', 1_000_010)
  t.equal(run(join(root, 'cli', 'main.js'), []).stdout, 'bundle', 'newer bundle')
  at('bundle/ktp.js', 999_990)
  t.equal(run(join(root, 'cli', 'main.js'), []).stdout, 'compiled', 'stale bundle')
  rmSync(join(root, 'bundle', 'ktp.js'))
  t.equal(run(join(root, 'cli', 'main.js'), []).stdout, 'compiled', 'no bundle')
})
