// `ktp features` determinism: --jobs N, sharding and kill -9 + rerun all give the same bytes/values
// (dither is seeded per utterance); and all of FSDD from ../shared (skipped when absent).
import t from 'tap'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CLI, ROOT, ktp, tmp } from './helpers.js'

const FSDD = join(ROOT, 'fixtures/fsdd/recordings')
const SHARED_FSDD = join(ROOT, '../shared/data/fsdd')
const dir = tmp('ktp-features-jobs-')
const sha = (b: Buffer | string) =>
  createHash('sha256')
    .update(typeof b === 'string' ? readFileSync(b) : b)
    .digest('hex')

/** A data dir of the first `n` FSDD fixture recordings (sorted), ids speaker-digit-take. */
function fsddDir(name: string, n: number): string {
  const d = join(dir, name)
  mkdirSync(d, { recursive: true })
  const files = readdirSync(FSDD)
    .filter((f) => f.endsWith('.wav'))
    .sort()
    .slice(0, n)
  const rows = files
    .map((f) => {
      const [dg, s, k] = f.replace(/\.wav$/, '').split('_')
      return { utt: `${s}-${dg}-${k}`, spk: s, path: join(FSDD, f) }
    })
    .sort((a, b) => (a.utt < b.utt ? -1 : 1))
  writeFileSync(join(d, 'wav.scp'), rows.map((r) => `${r.utt} ${r.path}\n`).join(''))
  writeFileSync(join(d, 'utt2spk'), rows.map((r) => `${r.utt} ${r.spk}\n`).join(''))
  return d
}

const data = fsddDir('fsdd300', 300)
// dither on (Kaldi's default 1): the values still must not depend on jobs, order or shards
const base = ['features', data, '--num-mel-bins', '40', '--quiet']
const resumeArgs = base.filter((a) => a !== '--quiet')

t.test('--jobs 2 (and 3) output is byte-identical to --jobs 1, as a file and as a stream', async (tt) => {
  const one = join(dir, 'j1.arrow')
  tt.equal(ktp([...base, '-o', one, '--jobs', '1']).code, 0)
  for (const j of ['2', '3']) {
    const out = join(dir, `j${j}.arrow`)
    const r = ktp([...base, '-o', out, '--jobs', j])
    tt.equal(r.code, 0, r.stderr)
    tt.equal(sha(out), sha(one), `--jobs ${j} file identical to --jobs 1`)
  }
  const s1 = ktp([...base, '-o', '-', '--jobs', '1'])
  const s2 = ktp([...base, '-o', '-', '--jobs', '2'])
  tt.ok(s1.stdout.length > 100_000, 'a real stream')
  tt.equal(sha(s2.stdout), sha(s1.stdout), 'stdout streams identical')
})

t.test('dither is per utterance: two shards merged equal the whole run', async (tt) => {
  const whole = join(dir, 'j1.arrow')
  if (!existsSync(whole)) tt.equal(ktp([...base, '-o', whole]).code, 0)
  const parts = ['1/2', '2/2'].map((s, i) => {
    const p = join(dir, `shard${i}.arrow`)
    tt.equal(ktp([...base, '--shard', s, '-o', p, '--jobs', String(i + 1)]).code, 0)
    return p
  })
  const merged = join(dir, 'merged.arrow')
  const m = ktp(['merge', ...parts, '-o', merged])
  tt.equal(m.code, 0, m.stderr)
  const a = ktp(['cat', whole, '--format', 'kaldi-text'])
  const b = ktp(['cat', merged, '--format', 'kaldi-text'])
  tt.ok(a.stdout.length > 0)
  tt.equal(sha(b.stdout), sha(a.stdout), 'same utterances, same values')
})

t.test('kill -9 mid-run, then the same command: the file equals an uninterrupted run', async (tt) => {
  const ref = join(dir, 'ref.arrow')
  tt.equal(ktp([...base, '-o', ref]).code, 0)
  const out = join(dir, 'killed.arrow')
  const partial = `${out}.partial`
  // Kill once the run has verifiably written part of its output: its log holds > 64 KB and has not
  // grown for three polls, so the last unit (many utterances in one write) is whole, not mid-write.
  const logBytes = () =>
    existsSync(partial) ? readdirSync(partial).reduce((a, f) => a + statSync(join(partial, f)).size, 0) : 0
  let killedAt = -1
  let last = -1
  let stable = 0
  await new Promise<void>((resolve) => {
    const child = spawn(process.execPath, [CLI, ...base, '-o', out, '--jobs', '2'], { stdio: 'ignore' })
    const poll = setInterval(() => {
      const n = logBytes()
      stable = n === last ? stable + 1 : 0
      last = n
      if (n > 64 * 1024 && stable >= 3 && killedAt < 0) {
        killedAt = n
        child.kill('SIGKILL')
      }
    }, 5)
    child.on('exit', () => {
      clearInterval(poll)
      resolve()
    })
  })
  tt.ok(killedAt > 0, `killed mid-run with ${killedAt} bytes of finished utterances in ${partial}`)
  tt.notOk(existsSync(out), 'no output file yet')
  const again = ktp([...resumeArgs, '-o', out])
  tt.equal(again.code, 0, again.stderr)
  tt.match(again.stderr, /resuming, [1-9]\d* utterances already done/, 'the rerun resumed, it did not start over')
  tt.equal(sha(out), sha(ref), 'identical to the uninterrupted run')
})

t.test(
  'all of FSDD: ktp prepare fsdd, then ktp features: 3,000 utterances',
  { skip: existsSync(SHARED_FSDD) ? false : `skipped: ${SHARED_FSDD} not found (needs ../shared)` },
  async (tt) => {
    const prep = join(dir, 'fsdd-all')
    const p = ktp(['prepare', 'fsdd', SHARED_FSDD, '-o', prep])
    tt.equal(p.code, 0, p.stderr)
    const out = join(dir, 'fsdd-all.arrow')
    const r = ktp(['features', prep, '--dither', '0', '-o', out, '--jobs', '2', '--quiet'])
    tt.equal(r.code, 0, r.stderr)
    tt.match(r.stderr, /done 3000, failed 0/)
    const info = JSON.parse(ktp(['info', out, '--json']).stdout.toString())
    tt.equal(info.utterances, 3000)
    tt.equal(info.frames, 125237, 'the frame count torchaudio gives (bench/features_ref.py)')
  },
)
