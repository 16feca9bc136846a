import t from 'tap'
import { join } from 'node:path'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { CLI, KTP, ktp, sh, tmp, uttList, writeFeatures } from './helpers.js'
import { parseKaldiMatrices } from '../stages/formats/kaldi-text.js'
import { shardOf } from '../pipeline/io/shard.js'

const dir = tmp()
const feats = join(dir, 'feats.arrow')
const utts = uttList(40, (i) => 5 + (i % 7))
const data = writeFeatures(feats, utts, 6, 7, 'fp-abc')
const totalFrames = utts.reduce((a, u) => a + u.frames, 0)

function info(args: string[], input?: Buffer) {
  const r = ktp(['info', ...args, '--json'], { input })
  if (r.code !== 0) throw new Error(r.stderr)
  return JSON.parse(r.stdout.toString())
}

t.test('ktp --help lists the subcommands; ktp info --help shows options and an example pipe', async (t) => {
  const h = ktp(['--help'])
  t.equal(h.code, 0)
  for (const c of ['info', 'cat', 'merge']) t.match(h.stdout.toString(), new RegExp(`ktp ${c} `))
  const i = ktp(['info', '--help'])
  t.match(i.stdout.toString(), /--json/)
  t.match(i.stdout.toString(), /\| ktp info -/)
})

t.test('ktp info reports counts, dims and the fingerprint of a file written by ktp cat', async (t) => {
  const out = join(dir, 'copy.arrow')
  const r = ktp(['cat', feats, '-o', out, '--quiet'])
  t.equal(r.code, 0, r.stderr)
  const j = info([out])
  t.equal(j.kind, 'features')
  t.equal(j.utterances, 40)
  t.equal(j.frames, totalFrames)
  t.same(j.columns.find((c: { name: string }) => c.name === 'feats').width, 6)
  t.equal(j.fingerprint, 'fp-abc', 'cat of one input keeps its fingerprint')
  const again = ktp(['cat', feats, '-o', out])
  t.match(again.stderr, /up to date/)
})

t.test('a pipe through real processes: ktp cat a | ktp cat - --shard 1/2 | ktp info -', async (t) => {
  const r = sh(`${KTP} cat ${feats} | ${KTP} cat - --shard 1/2 | ${KTP} info - --json`)
  t.equal(r.code, 0, r.stderr)
  const j = JSON.parse(r.stdout.toString())
  const expected = utts.filter((u) => shardOf(u.utt, 2) === 1)
  t.ok(expected.length > 5 && expected.length < 35, 'the hash splits the ids')
  t.equal(j.utterances, expected.length)
  t.equal(
    j.frames,
    expected.reduce((a, u) => a + u.frames, 0),
  )
  t.equal(j.fingerprint, 'fp-abc')
})

t.test('large utterances (messages spanning many pipe chunks) survive a pipe intact', async (t) => {
  const big = join(dir, 'big.arrow')
  const bigUtts = uttList(11, (i) => 1500 + i * 37)
  writeFeatures(big, bigUtts, 40, 9, 'fp-big')
  const r = sh(`${KTP} cat ${big} | ${KTP} cat - | ${KTP} info - --json && cat ${big} | ${KTP} info - --json`)
  t.equal(r.code, 0, r.stderr)
  const [viaStream, viaFile] = r.stdout
    .toString()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
  for (const j of [viaStream, viaFile]) {
    t.equal(j.utterances, 11)
    t.equal(
      j.frames,
      bigUtts.reduce((a, u) => a + u.frames, 0),
    )
  }
})

t.test('reading a stream from a pipe holds no memory per record batch', async (t) => {
  // 40k small utterances through `ktp cat - | ktp cat -` with a 64 MB heap: reading a Node stream
  // through apache-arrow kept ~2 KB per batch (80 MB here: out of memory); the reader must be flat
  const many = join(dir, 'many.arrow')
  writeFeatures(
    many,
    uttList(40000, () => 2),
    4,
    3,
    'fp-many',
  )
  const small = `node --max-old-space-size=64 ${CLI}`
  const r = sh(`${KTP} cat ${many} --quiet | ${small} cat - --quiet | ${small} info - --json`)
  t.equal(r.code, 0, r.code === 0 ? 'exit 0' : r.stderr.slice(-600))
  if (r.code === 0) t.equal(JSON.parse(r.stdout.toString()).utterances, 40000)
})

t.test('shards partition the input and merge restores it', async (t) => {
  const parts = [1, 2, 3].map((i) => join(dir, `part${i}.arrow`))
  parts.forEach((p, i) => {
    t.equal(ktp(['cat', feats, '--shard', `${i + 1}/3`, '-o', p, '--quiet']).code, 0)
  })
  const counts = parts.map((p) => info([p]).utterances)
  t.equal(
    counts.reduce((a, b) => a + b, 0),
    40,
    'no utterance lost or duplicated',
  )
  const merged = join(dir, 'merged.arrow')
  const m = ktp(['merge', ...parts, '-o', merged, '--quiet'])
  t.equal(m.code, 0, m.stderr)
  const text = ktp(['cat', merged, '--format', 'kaldi-text'])
  const mats = parseKaldiMatrices(text.stdout.toString(), 'merged')
  t.same(
    mats.map((x) => x.utt),
    utts.map((u) => u.utt),
    'sorted back into the original order',
  )
  for (const mat of mats) {
    const orig = data.get(mat.utt)!
    let maxd = 0
    for (let i = 0; i < orig.length; i++) maxd = Math.max(maxd, Math.abs(orig[i] - mat.data[i]))
    t.ok(maxd < 1e-6, `${mat.utt} values survive the text round trip (max |Δ| ${maxd})`)
    t.equal(mat.width, 6)
  }
  t.equal(info([merged]).fingerprint, 'fp-abc', 'shards of one computation merge to the same fingerprint')
})

t.test('--utts selects by id list or file; kaldi-text looks like Kaldi', async (t) => {
  const list = join(dir, 'list')
  writeFileSync(list, 'utt00003 extra-field\nutt00007\n')
  t.equal(info(['-'], ktp(['cat', feats, '--utts', list]).stdout).utterances, 2)
  const r = ktp(['cat', feats, '--utts', 'utt00001', '--format', 'kaldi-text'])
  const lines = r.stdout.toString().split('\n')
  t.equal(lines[0], 'utt00001  [')
  t.equal(lines.length - 1, 1 + 6, 'header + one line per frame')
  t.match(lines[6], /\]$/)
})

t.test('errors: exit 2 with a message naming the file', async (t) => {
  const missing = ktp(['info', join(dir, 'nope.arrow')])
  t.equal(missing.code, 2)
  t.match(missing.stderr, /nope\.arrow: no such file/)
  const junk = join(dir, 'junk.arrow')
  writeFileSync(junk, 'this is not arrow at all')
  const j = ktp(['info', junk])
  t.equal(j.code, 2)
  t.match(j.stderr, /junk\.arrow/)
  const trunc = join(dir, 'trunc.arrow')
  const bytes = readFileSync(feats)
  writeFileSync(trunc, bytes.subarray(0, Math.floor(bytes.length / 2)))
  const tr = ktp(['cat', trunc, '-o', join(dir, 'out-trunc.arrow')])
  t.equal(tr.code, 2, 'a truncated Arrow file is fatal')
  t.match(tr.stderr, /trunc\.arrow/)
  t.notOk(existsSync(join(dir, 'out-trunc.arrow')), 'no partial output presented as complete')
  const bad = ktp(['cat', feats, '--shard', '3/2'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /expected --shard i\/N/)
  const usage = ktp(['frobnicate'])
  t.equal(usage.code, 2)
})
