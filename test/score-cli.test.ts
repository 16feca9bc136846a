// `ktp score` through a real process: the sclite golden tables (fixtures/sclite, made by real
// sclite 2.10 — see fixtures/sclite/make_golden.sh) come out byte for byte; --map, --json;
// errors name the file and the line and exit 2.
import t from 'tap'
import { join } from 'node:path'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { ROOT, ktp, tmp } from './helpers.js'

const golden = join(ROOT, 'fixtures', 'sclite')

/** The table part of sclite's sum output: from the heading to the bottom border. */
function sumTable(text: string): string {
  const lines = text.split('\n')
  const a = lines.findIndex((l) => l.includes('SYSTEM SUMMARY PERCENTAGES by SPEAKER'))
  const b = lines.findIndex((l) => /^\s*`-+'$/.test(l))
  return `${lines.slice(a, b + 1).join('\n')}\n`
}

t.test('the summary table matches sclite on the golden cases', async (t) => {
  for (const c of ['01-basic', '07-multi-speaker']) {
    t.ok(readdirSync(golden).includes(c), c)
    const r = ktp(['score', '--ref', join(golden, c, 'ref.trn'), '--hyp', join(golden, c, 'hyp.trn')])
    t.equal(r.code, 0, r.stderr)
    t.equal(r.stdout.toString(), sumTable(readFileSync(join(golden, c, 'sum.txt'), 'utf8')), `${c}: sum table`)
  }
})

t.test('--map timit39 folds both sides; --map FILE; --json --utterances', async (t) => {
  const dir = tmp('ktp-score-')
  const ref = join(dir, 'ref.trn')
  const hyp = join(dir, 'hyp.trn')
  writeFileSync(ref, 'h# ix q tcl t h# (fa-1)\n')
  writeFileSync(hyp, 'sil ih cl t sil (fa-1)\n')
  const raw = JSON.parse(ktp(['score', '--ref', ref, '--hyp', hyp, '--json']).stdout.toString())
  t.same(
    [raw.overall.words, raw.overall.sub, raw.overall.del],
    [6, 4, 1],
    'without a map: 4 substitutions and 1 deletion',
  )
  const r = ktp(['score', '--ref', ref, '--hyp', hyp, '--map', 'timit39', '--json', '--utterances'])
  t.equal(r.code, 0, r.stderr)
  const j = JSON.parse(r.stdout.toString())
  t.same([j.overall.words, j.overall.corr, j.overall.errors], [5, 5, 0], 'q deleted, h#/tcl → sil, ix → ih')
  t.same(j.utterances, [{ id: 'fa-1', speaker: 'fa', corr: 5, sub: 0, del: 0, ins: 0, ops: 'CCCCC' }])
  const map = join(dir, 'map.txt')
  writeFileSync(map, 'h# sil\nix ih\ntcl cl\nq\n')
  t.equal(
    JSON.parse(ktp(['score', '--ref', ref, '--hyp', hyp, '--map', map, '--json']).stdout.toString()).overall.errors,
    0,
  )
})

t.test('errors name the file and line, exit 2', async (t) => {
  const dir = tmp('ktp-score-')
  const ref = join(dir, 'ref.trn')
  writeFileSync(ref, 'a b (s-1)\n')
  const check = (hypText: string, pattern: RegExp, args: string[] = []) => {
    const hyp = join(dir, 'hyp.trn')
    writeFileSync(hyp, hypText)
    const r = ktp(['score', '--ref', ref, '--hyp', hyp, ...args])
    t.equal(r.code, 2)
    t.match(r.stderr, pattern)
    t.equal(r.stdout.length, 0, 'nothing on stdout')
  }
  check('a b (s-1)\na b s-2\n', /ktp: error: .*hyp\.trn:2: no "\(utterance-id\)" in "a b s-2"/)
  check('a b (s-1)\n\na (s-9)\n', /ktp: error: .*hyp\.trn: no reference for hypothesis utterance "s-9" \(line 3\)/)
  check('a b (s1)\n', /hyp\.trn:1: cannot find the speaker in utterance id "s1"/)
  check('', /--hyp .*hyp\.trn: no hypotheses to score/)
  check('a (s-1)\n', /--map: no such file 'nomap' \(or give timit39\)/, ['--map', 'nomap'])
  const r = ktp(['score', '--ref', join(dir, 'missing.trn'), '--hyp', ref])
  t.equal(r.code, 2)
  t.match(r.stderr, /--ref .*missing\.trn: no such file/)
  const u = ktp(['score', '--hyp', ref])
  t.equal(u.code, 2)
  t.match(u.stderr, /--ref/)
})
