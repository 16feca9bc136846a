// Issue 17's weak spots that the option checks catch before any audio is read: a shard value that
// starts with '-' (yargs used to split it into short flags) and an absurd sample frequency (it used
// to resample into gigabytes and ignore SIGTERM).
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ROOT, ktp, tmp } from './helpers.js'

const dir = tmp()
const wav = join(ROOT, 'fixtures', 'fsdd', 'recordings', '0_george_0.wav')
writeFileSync(join(dir, 'wav.scp'), `u1 ${wav}\n`)
writeFileSync(join(dir, 'utt2spk'), 'u1 george\n')

t.test('--shard -1/4 names the option and its range', async (t) => {
  const r = ktp(['features', dir, '--shard', '-1/4', '-o', join(dir, 'f.arrow')])
  t.equal(r.code, 2)
  t.match(r.stderr, /--shard i\/N with 1 ≤ i ≤ N, got '-1\/4'/)
  t.notMatch(r.stderr, /Unknown argument/)
})

t.test('--sample-frequency 1e9 --resample fails at once with the bound', async (t) => {
  const r = ktp(['features', dir, '--sample-frequency', '1e9', '--resample', '-o', join(dir, 'g.arrow')])
  t.equal(r.code, 2)
  t.match(r.stderr, /--sample-frequency: expected at most 768000 Hz, got 1000000000/)
})
