// I/O faults (issue 17): full disks, unwritable outputs, outputs that are inputs, empty shards,
// hangs and signals. Each case runs the built CLI (or the library function at fault) and checks the
// exit code, a one-line message naming the file and the reason, and that no output is claimed
// whole when it is not. Full-disk and read-only cases mount a small tmpfs, which needs root: they
// are skipped with a message otherwise.
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statfsSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs'
import { basename, join } from 'node:path'
import { writeFileAtomic } from '../pipeline/io/atomic-file.js'
import { refuseOverwritingInputs } from '../pipeline/io/output-guard.js'
import { KtpError } from '../schemas/errors.js'
import { saveCheckpoint } from '../stages/train/checkpoint.js'
import { scoreFiles } from '../stages/score/stage.js'
import { formatSumTable } from '../stages/scoring/report.js'
import { CLI, KTP, ROOT, ktp, sh, tmp, uttList, writeFeatures } from './helpers.js'
import { shardOf } from '../pipeline/io/shard.js'

const BAD = join(ROOT, 'fixtures', 'bad')

const dir = tmp('ktp-faults-')
const feats = join(dir, 'feats.arrow')
// 6 utterances of 60 frames × 23 dims: about 33 KB of Arrow
writeFeatures(
  feats,
  uttList(6, () => 60),
  23,
  3,
  'fp-faults',
)

/** One actionable line: `ktp: error: …`, no stack trace, no "internal error". */
function oneLine(t: Test, stderr: string, what: RegExp): void {
  const lines = stderr.trim().split('\n')
  t.equal(lines.length, 1, `one line on stderr:\n${stderr}`)
  t.match(lines[0], /^ktp: error: /)
  t.match(lines[0], what)
  t.notMatch(stderr, /internal error|\n\s+at /, 'no stack trace')
}

function caught(f: () => void): Error | undefined {
  try {
    f()
  } catch (e) {
    return e as Error
  }
  return undefined
}

const isRoot = process.getuid?.() === 0

function mount(size: number, ro: boolean): string | null {
  if (!isRoot) return null
  const mnt = join(tmp('ktp-tmpfs-'), 'mnt')
  mkdirSync(mnt)
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}${ro ? ',ro' : ''}`, 'tmpfs', mnt])
  return r.status === 0 ? mnt : null
}

/** A fresh tmpfs of `size` bytes (root only), unmounted at the end of the test. */
function smallTmpfs(t: Test, size: number, ro = false): string {
  const mnt = mount(size, ro)
  if (!mnt) throw new Error('mount -t tmpfs failed')
  t.teardown(() => {
    spawnSync('umount', [mnt])
  })
  return mnt
}

const canMount = (() => {
  const mnt = mount(64 * 1024, false)
  if (mnt) spawnSync('umount', [mnt])
  return mnt !== null
})()

/** Fill `mnt` so that about `free` bytes stay free; returns the filler's path. */
function fill(mnt: string, free: number): string {
  const s = statfsSync(mnt)
  const filler = join(mnt, 'filler')
  writeFileSync(filler, Buffer.alloc(Math.max(0, s.bavail * s.bsize - free)))
  return filler
}

const noTmpfs = 'needs root to mount a small tmpfs (mount -t tmpfs -o size=64k tmpfs DIR); skipped'
const tmpfs = { skip: canMount ? false : noTmpfs }

t.test('full disk: writeFileAtomic writes every byte or nothing, and keeps the old file', tmpfs, async (t) => {
  const mnt = smallTmpfs(t, 64 * 1024)
  const path = join(mnt, 'stats.json')
  writeFileAtomic(path, 'old contents\n')
  fill(mnt, 8 * 1024)
  // 100 KB into 8 KB: write(2) writes what fits and returns short, then fails with ENOSPC
  const err = caught(() => writeFileAtomic(path, Buffer.alloc(100 * 1024, 1)))
  t.ok(err instanceof KtpError, 'a KtpError (one line for the user)')
  t.match(err?.message, /stats\.json: cannot write: no space left on the device \(ENOSPC\)/)
  t.equal(readFileSync(path, 'utf8'), 'old contents\n', 'the old file is untouched')
  t.same(readdirSync(mnt).sort(), ['filler', 'stats.json'], 'no temp file left behind')
  // a training checkpoint goes through the same function: never a truncated checkpoint
  const ckpt = join(mnt, 'checkpoint.bin')
  t.throws(() => saveCheckpoint(ckpt, { header: {}, arrays: { w: new Float32Array(50_000) } }), /ENOSPC/)
  t.notOk(existsSync(ckpt), 'no checkpoint claimed')
})

t.test('full disk: cmvn compute fails with ENOSPC and does not say done', tmpfs, async (t) => {
  const mnt = smallTmpfs(t, 64 * 1024)
  fill(mnt, 0)
  const r = ktp(['cmvn', 'compute', feats, '-o', join(mnt, 'cmvn.json')])
  t.equal(r.code, 2)
  oneLine(t, r.stderr, /cmvn\.json: cannot write: no space left on the device \(ENOSPC\)/)
  t.notMatch(r.stderr, /done/)
  t.notOk(existsSync(join(mnt, 'cmvn.json')))
})

t.test('full disk while an Arrow output is finished: nothing claimed, the rerun resumes', tmpfs, async (t) => {
  const mnt = smallTmpfs(t, 128 * 1024)
  const size = readFileSync(feats).length
  // room for the resumable log but not for the final file besides it
  const filler = fill(mnt, size + 12 * 1024)
  const out = join(mnt, 'out.arrow')
  const r = ktp(['cat', feats, '-o', out, '--quiet'])
  t.equal(r.code, 2)
  oneLine(t, r.stderr, /out\.arrow: cannot write: no space left on the device \(ENOSPC\)/)
  t.notOk(existsSync(out), 'no output claimed')
  t.ok(existsSync(`${out}.partial`), 'the finished utterances are kept')
  truncateSync(filler, 0)
  const again = ktp(['cat', feats, '-o', out])
  t.equal(again.code, 0, again.stderr)
  t.match(again.stderr, /resuming, 6 utterances already done/)
  const info = JSON.parse(ktp(['info', out, '--json']).stdout.toString())
  t.equal(info.utterances, 6)
  t.notOk(existsSync(`${out}.partial`))
})

t.test('full disk while the resumable log is written: ENOSPC, one line', tmpfs, async (t) => {
  const mnt = smallTmpfs(t, 64 * 1024)
  fill(mnt, 8 * 1024)
  const r = ktp(['cat', feats, '-o', join(mnt, 'x.arrow'), '--quiet'])
  t.equal(r.code, 2)
  oneLine(t, r.stderr, /x\.arrow: cannot write \(its resumable log\): no space left on the device \(ENOSPC\)/)
  t.notOk(existsSync(join(mnt, 'x.arrow')))
})

t.test('unwritable outputs are reported as what they are, in one line, without hanging', async (t) => {
  const afile = join(dir, 'afile')
  writeFileSync(afile, 'x')
  const adir = join(dir, 'adir.arrow')
  mkdirSync(adir)
  const cases: [string, RegExp][] = [
    // Node's recursive mkdir loops forever where mkdir fails with ENOENT under an existing parent
    ['/proc/x.arrow', /\/proc\/x\.arrow: cannot write .*\(ENOENT\)/],
    [join(afile, 'x.arrow'), /afile: cannot create directory: a file of that name exists \(ENOTDIR\)/],
    [adir, /adir\.arrow: cannot write: it is a directory/],
  ]
  if (isRoot) cases.push(['/sys/x.arrow', /\/sys\/x\.arrow: cannot write .*operation not permitted \(EPERM\)/])
  for (const [out, want] of cases) {
    const r = ktp(['cat', feats, '-o', out, '--quiet'])
    t.equal(r.code, 2, out)
    oneLine(t, r.stderr, want)
  }
  t.same(readdirSync(adir), [], 'nothing written into the directory')
  if (!canMount) return t.comment(`read-only file system: ${noTmpfs}`)
  const ro = smallTmpfs(t, 64 * 1024, true)
  const r = ktp(['cat', feats, '-o', join(ro, 'x.arrow'), '--quiet'])
  t.equal(r.code, 2)
  oneLine(t, r.stderr, /x\.arrow: cannot write .*the file system is read-only \(EROFS\)/)
  const j = ktp(['cmvn', 'compute', feats, '-o', join(ro, 'sub', 'cmvn.json')])
  t.equal(j.code, 2)
  oneLine(t, j.stderr, /sub: cannot create directory: the file system is read-only \(EROFS\)/)
})

t.test('a device as output is written to, never renamed over', async (t) => {
  const r = ktp(['cat', feats, '-o', '/dev/null', '--quiet'])
  t.equal(r.code, 0, r.stderr)
  const full = ktp(['cat', feats, '-o', '/dev/full', '--quiet'])
  t.equal(full.code, 2)
  oneLine(t, full.stderr, /\/dev\/full: cannot write: no space left on the device \(ENOSPC\)/)
  // (through a pipe: spawnSync's stdout is a socket, which /dev/stdout cannot open)
  const c = sh(`${KTP} cmvn compute ${feats} -o /dev/stdout | cat`)
  t.equal(c.code, 0, c.stderr)
  t.match(c.stdout.toString(), /"format": "ktp-cmvn"/)
  for (const d of ['/dev/null', '/dev/full']) {
    const st = spawnSync('stat', ['-c', '%F', d]).stdout.toString().trim()
    t.equal(st, 'character special file', `${d} is still a device`)
  }
})

t.test('an output that is an input is refused before anything is read or written', async (t) => {
  const same = join(dir, 'same.arrow')
  copyFileSync(feats, same)
  const before = readFileSync(same)
  const splice = ktp(['splice', same, '-o', same])
  t.equal(splice.code, 2)
  oneLine(t, splice.stderr, /-o .*same\.arrow is also an input \(.*same\.arrow\): ktp never overwrites an input/)
  const cmvn = ktp(['cmvn', 'compute', same, '-o', `${dir}/./same.arrow`])
  t.equal(cmvn.code, 2)
  oneLine(t, cmvn.stderr, /is also an input/)
  t.same(readFileSync(same), before, 'the input is untouched')
  t.notOk(existsSync(`${same}.partial`), 'no partial output started')
  // a model directory being read: infer must not write into it
  const model = join(dir, 'model')
  mkdirSync(model)
  writeFileSync(join(model, 'ktp.json'), '{}')
  writeFileSync(join(model, 'params.bin'), 'weights')
  const infer = ktp(['infer', '--model', model, feats, '-o', join(model, 'params.bin')])
  t.equal(infer.code, 2)
  oneLine(
    t,
    infer.stderr,
    /-o .*params\.bin lies inside the model directory that this command reads \(--model .*model\)/,
  )
  t.equal(readFileSync(join(model, 'params.bin'), 'utf8'), 'weights', 'the model is untouched')
})

t.test('the output guard sees through other spellings, symlinks and hard links', async (t) => {
  const d = tmp('ktp-guard-')
  const a = join(d, 'a.arrow')
  writeFileSync(a, 'x')
  linkSync(a, join(d, 'hard.arrow'))
  symlinkSync(a, join(d, 'sym.arrow'))
  const refuse = (argv: Record<string, unknown>, mayOverwrite?: string[]) =>
    caught(() => refuseOverwritingInputs(argv, { positionals: ['inputs'], mayOverwrite }))
  t.match(
    refuse({ inputs: [join(d, 'hard.arrow')], output: a })?.message,
    /-o .*a\.arrow is also an input \(.*hard\.arrow\)/,
  )
  t.match(refuse({ inputs: [join(d, 'sym.arrow')], o: a, output: a })?.message, /is also an input/)
  t.match(refuse({ inputs: ['-'], stats: `${d}/../${basename(d)}/a.arrow`, output: a })?.message, /\(--stats /)
  t.match(refuse({ inputs: [], ctmOut: a, 'ctm-out': a, text: a })?.message, /--ctm-out .* is also an input \(--text /)
  t.equal(refuse({ inputs: [a], output: join(d, 'new.arrow') }), undefined, 'a new output is fine')
  t.equal(refuse({ inputs: [a], output: '-' }), undefined, 'stdout is fine')
  t.equal(refuse({ hmm: a, output: a }, ['hmm']), undefined, 'an input read whole may be replaced when declared so')
  const m = join(d, 'm')
  mkdirSync(m)
  t.equal(refuse({ model: m, output: join(m, 'x') }), undefined, 'a directory without ktp.json is no model')
  writeFileSync(join(m, 'ktp.json'), '{}')
  t.match(refuse({ teacher: `${m}/`, output: m })?.message, /lies inside the model directory/)
  t.equal(refuse({ model: m, output: `${m}-2/x` }), undefined, 'a sibling with a common prefix is not inside')
})

t.test('an empty shard is a valid stream: the next stages take it (schema only, done 0, exit 0)', async (t) => {
  const d = tmp('ktp-empty-')
  const ids = uttList(6, () => 60).map((u) => u.utt)
  const empty = Array.from({ length: 40 }, (_, i) => i + 1).find((k) => ids.every((u) => shardOf(u, 40) !== k))!
  const r = sh(`${KTP} cat ${feats} --shard ${empty}/40 -o - | ${KTP} splice - -o - | ${KTP} info - --json`)
  t.equal(r.code, 0, r.stderr)
  t.notMatch(r.stderr, /truncated|corrupt|internal error/)
  t.match(r.stderr, /ktp splice: done 0, failed 0/)
  t.equal(JSON.parse(r.stdout.toString()).utterances, 0)
  t.equal(JSON.parse(r.stdout.toString()).kind, 'features')
  // features --shard over a data dir, into a teacher: a model of 3-dim input, 4 classes
  const dd = join(d, 'dd')
  mkdirSync(dd)
  writeFileSync(join(dd, 'wav.scp'), `u1 ${join(BAD, 'audio', 'good1.wav')}\nu2 ${join(BAD, 'audio', 'good2.wav')}\n`)
  writeFileSync(join(dd, 'utt2spk'), 'u1 s\nu2 s\n')
  const k = Array.from({ length: 40 }, (_, i) => i + 1).find((i) => shardOf('u1', 40) !== i && shardOf('u2', 40) !== i)!
  const model = join(d, 'model')
  mkdirSync(model)
  copyFileSync(join(BAD, 'model-truncated', 'ktp.json'), join(model, 'ktp.json'))
  saveCheckpoint(join(model, 'params.bin'), {
    header: { format: 'ktp.model@1' },
    arrays: { 'out.W': new Float32Array(12).fill(0.1), 'out.b': new Float32Array(4) },
  })
  const f = sh(
    `${KTP} features ${dd} --num-mel-bins 3 --shard ${k}/40 -o - | ${KTP} infer --model ${model} - -o ${join(d, 'soft.arrow')}`,
  )
  t.equal(f.code, 0, f.stderr)
  t.match(f.stderr, /ktp features: done 0, failed 0/)
  t.match(f.stderr, /ktp infer: done 0, failed 0/)
  t.equal(JSON.parse(ktp(['info', join(d, 'soft.arrow'), '--json']).stdout.toString()).utterances, 0)
})

t.test('merge refuses parts of different runs (a CMVN shard and a raw shard)', async (t) => {
  const d = tmp('ktp-merge-')
  const a = join(d, 'a.arrow')
  const b = join(d, 'b.arrow')
  t.equal(ktp(['cmvn', 'apply', '--mode', 'utterance', feats, '--shard', '1/2', '-o', a, '--quiet']).code, 0)
  t.equal(ktp(['cat', feats, '--shard', '2/2', '-o', b, '--quiet']).code, 0)
  const r = ktp(['merge', a, b, '-o', join(d, 'm.arrow')])
  t.equal(r.code, 2)
  oneLine(
    t,
    r.stderr,
    /b\.arrow is not a shard of the same run as .*a\.arrow: fingerprints fp-faults \(no producer recorded\) and \w+ \(cmvn-apply \{"mode":"utterance"/,
  )
  t.notOk(existsSync(join(d, 'm.arrow')))
})

t.test('score: a missing hypothesis counts as all deletions, as sclite scores an empty one', async (t) => {
  const g = join(ROOT, 'fixtures', 'sclite-missing')
  const golden = (f: string) => {
    const lines = readFileSync(join(g, f), 'utf8').split('\n')
    const a = lines.findIndex((l) => l.includes('SYSTEM SUMMARY PERCENTAGES by SPEAKER'))
    const b = lines.findIndex((l) => /^\s*`-+'$/.test(l))
    return `${lines.slice(a, b + 1).join('\n')}\n`
  }
  const base = { json: false, utterances: false, caseSensitive: false } as const
  const warnings: string[] = []
  const ref = join(g, 'ref.trn')
  const hyp = join(g, 'hyp.trn')
  const del = scoreFiles(ref, hyp, { ...base, missing: 'delete' }, (l) => warnings.push(l))
  t.equal(formatSumTable(del, 'hyp.trn'), golden('sum-deletions.txt'), 'default: sclite on an empty hypothesis line')
  t.match(warnings.join('\n'), /no hypothesis for 1 reference utterance\(s\) \(bob-u2\)/)
  const ign = scoreFiles(ref, hyp, { ...base, missing: 'ignore' }, () => t.fail('no warning'))
  t.equal(formatSumTable(ign, 'hyp.trn'), golden('sum-ignore.txt'), '--missing ignore: sclite on the file as it is')
  t.match(
    caught(() => scoreFiles(ref, hyp, { ...base, missing: 'error' }))?.message,
    /no hypothesis for 1 reference utterance\(s\): bob-u2/,
  )
})

t.test('no hang, no crash: bounded options, non-files in wav.scp, a closed pipe', async (t) => {
  const d = tmp('ktp-hang-')
  const splice = ktp(['splice', feats, '--context', '1000000000', '-o', '-'])
  t.equal(splice.code, 2)
  oneLine(t, splice.stderr, /--context: expected number to be <=1000, got 1000000000/)
  // a data dir whose wav.scp lists a good recording, a directory and a FIFO
  const dd = join(d, 'dd')
  mkdirSync(dd)
  const fifo = join(d, 'fifo.wav')
  spawnSync('mkfifo', [fifo])
  const rec = join(ROOT, 'fixtures', 'fsdd', 'recordings', '0_george_0.wav') // 8 kHz
  writeFileSync(join(dd, 'wav.scp'), `a ${rec}\nb ${d}\nc ${fifo}\n`)
  writeFileSync(join(dd, 'utt2spk'), 'a s\nb s\nc s\n')
  const f = spawnSync(process.execPath, [CLI, 'features', dd, '-o', join(d, 'f.arrow')], { timeout: 60_000 })
  const err = f.stderr.toString()
  t.equal(f.status, 1, `fails the two entries, not the run (and does not block on the FIFO)\n${err}`)
  t.match(err, /WARNING b \(.*\): audio entry .* is a directory, expected an audio file/)
  t.match(err, /WARNING c \(.*\): audio entry .*fifo\.wav is a FIFO \(named pipe\)/)
  t.match(err, /done 1, failed 2/)
  // Kaldi's MelBanks refuses empty mel bins; so does ktp, before reading any audio
  writeFileSync(join(dd, 'wav.scp'), `a ${rec}\n`)
  writeFileSync(join(dd, 'utt2spk'), 'a s\n')
  const mel = ktp(['features', dd, '--num-mel-bins', '128', '-o', join(d, 'm.arrow')])
  t.equal(mel.code, 2)
  t.match(
    mel.stderr,
    /ktp: error: --num-mel-bins 128: mel bin 5 holds no FFT bin at 8000 Hz \(256-point FFT, 20–4000 Hz\); use fewer mel bins/,
  )
  t.notOk(existsSync(join(d, 'm.arrow')))
  // a reader that stops early is a normal end: no error, exit 0
  const head = sh(`${KTP} cat ${feats} --format kaldi-text | head -1`)
  t.equal(head.code, 0, head.stderr)
  t.notMatch(head.stderr, /error|EPIPE/)
  t.match(head.stdout.toString(), /^utt00000 {2}\[\n$/)
})

t.teardown(() => rmSync(dir, { recursive: true, force: true }))
