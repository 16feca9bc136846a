import t, { type Test } from 'tap'
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, ktp, tmp } from './helpers.js'

/**
 * `ktp run … --folds K` on input that cannot be folded: one line naming the problem, exit 2, and
 * nothing run (the output directory is not even created), whatever the recipe would train.
 */
const REC = join(ROOT, 'fixtures', 'fsdd', 'recordings')

/** An FSDD-layout corpus with `takes` recordings of digit 0 per speaker, and an optional speakers.json. */
function corpus(speakers: string[], listed: string[] = []): string {
  const dir = tmp('ktp-folds-corpus-')
  mkdirSync(join(dir, 'recordings'))
  for (const s of speakers)
    for (const take of [0, 1])
      copyFileSync(join(REC, `0_george_${take}.wav`), join(dir, 'recordings', `0_${s}_${take}.wav`))
  if (listed.length)
    writeFileSync(join(dir, 'speakers.json'), JSON.stringify(Object.fromEntries(listed.map((s) => [s, {}]))))
  return dir
}

function refused(t: Test, args: string[], message: RegExp) {
  const out = join(tmp('ktp-folds-out-'), 'run')
  const r = ktp(['run', 'fsdd', '--quick', '--out', out, ...args])
  t.equal(r.code, 2, `exit 2: ${r.stderr.trim()}`)
  t.match(r.stderr, message)
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line, no stack trace')
  t.notOk(existsSync(out), 'nothing ran')
}

t.test('--folds larger than the number of speakers', async (t) => {
  refused(
    t,
    ['--folds', '7'],
    /^ktp: error: --folds 7: the corpus has only 6 fold\(s\) \(6 speakers in .*fixtures\/fsdd\); give --folds 1\.\.6\n$/,
  )
})

t.test('--folds not a whole number ≥ 1: the option, what it takes, and the word given', async (t) => {
  const expected = '--folds: expected a whole number of folds, 1\\.\\.the number of speakers in the corpus'
  refused(t, ['--folds', '0'], new RegExp(`^ktp: error: ${expected}, got 0\n$`))
  refused(t, ['--folds', '2.5'], new RegExp(`^ktp: error: ${expected}, got 2\\.5\n$`))
  // yargs hands over NaN for a word: the message quotes the word, not "received NaN, got null"
  refused(t, ['--folds', 'abc'], new RegExp(`^ktp: error: ${expected}, got "abc"\n$`))
  refused(t, ['--folds=two'], new RegExp(`^ktp: error: ${expected}, got "two"\n$`))
})

t.test('a speaker with no utterances', async (t) => {
  const dir = corpus(['alice', 'bob', 'carol'], ['alice', 'bob', 'carol', 'dave'])
  refused(t, ['--data', dir, '--folds', '2'], /speaker 'dave' has no utterances; remove it or add its recordings/)
})

t.test('a corpus of one speaker (or two): no test/dev/train split', async (t) => {
  refused(
    t,
    ['--data', corpus(['solo']), '--folds', '1'],
    /1 speaker\(s\) \(solo\); --folds needs at least 3 \(a test, a dev and a training speaker\)/,
  )
  refused(
    t,
    ['--data', corpus(['ann', 'ben']), '--folds', '1'],
    /2 speaker\(s\) \(ann, ben\); --folds needs at least 3/,
  )
})

t.test('a foldable corpus plans (dry run): three speakers, three folds', async (t) => {
  const out = join(tmp('ktp-folds-out-'), 'run')
  const r = ktp([
    'run',
    'fsdd',
    '--quick',
    '--out',
    out,
    '--data',
    corpus(['alice', 'bob', 'carol']),
    '--folds',
    '3',
    '--dry-run',
  ])
  t.equal(r.code, 0, r.stderr.split('\n')[0])
  t.match(r.stderr, /folds alice\(dev bob\) bob\(dev carol\) carol\(dev alice\)/)
  t.match(r.stderr, /fold-carol\/connect-digits +would run/)
})
