import t from 'tap'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { RecordBatch } from 'apache-arrow'
import { tmp } from './helpers.js'
import {
  dataDirFingerprint,
  dataDirInput,
  formatCtm,
  formatDataDir,
  hashFile,
  parseCtm,
  readAudioBytes,
  readDataDir,
  spk2utt,
  uttIds,
  writeDataDir,
} from '../stages/formats/kaldi-datadir.js'
import { cCompare } from '../stages/formats/kaldi-tables.js'
import { drain } from '../pipeline/io/run-stage.js'
import { getNumber, getString, uttId } from '../schemas/utterance.js'
import { UttError } from '../schemas/errors.js'
import { canonicalJson, hashBytes } from '../schemas/fingerprint.js'

function mkdir(files: Record<string, string>): string {
  const d = tmp('ktp-datadir-')
  for (const [n, c] of Object.entries(files)) writeFileSync(join(d, n), c)
  return d
}

async function collect(dir: string, allowCommands = false) {
  const input = await dataDirInput(dir, { allowCommands })
  const rows: RecordBatch[] = []
  const errors: UttError[] = []
  await drain(
    input.stream(),
    (b) => void rows.push(b),
    (e) => {
      if (!(e instanceof UttError)) return false
      errors.push(e)
      return true
    },
  )
  return { input, rows, errors }
}

t.test('C byte order, as LC_ALL=C sort', async (t) => {
  t.same(['b', 'B', '_', 'a', 'é', 'z'].sort(cCompare), ['B', '_', 'a', 'b', 'z', 'é'])
  // above U+D7FF UTF-16 order differs from byte order: U+FF5A (EF BD 9A) sorts before U+1F600 (F0 …)
  t.same(['😀', 'ｚ', 'a'].sort(cCompare), ['a', 'ｚ', '😀'])
})

t.test('cCompare agrees with comparing the UTF-8 bytes, surrogates and prefixes included', async (t) => {
  // a small alphabet makes shared prefixes, equal strings and lone surrogates common
  const units = [0x41, 0x61, 0x7f, 0xe9, 0x7ff, 0x800, 0xd7ff, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xe000, 0xff5a, 0xffff]
  let seed = 12345
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0
    return seed % n
  }
  const word = () => String.fromCharCode(...Array.from({ length: rand(5) }, () => units[rand(units.length)]))
  const sign = (x: number) => (x < 0 ? -1 : x > 0 ? 1 : 0)
  let bad = 0
  let different = 0
  for (let i = 0; i < 20000; i++) {
    const a = word()
    const b = i % 3 === 0 ? a + word() : word()
    const want = Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
    if (sign(cCompare(a, b)) !== want || sign(cCompare(b, a)) !== -want) bad++
    if ((a < b ? -1 : a > b ? 1 : 0) !== want) different++
  }
  t.equal(bad, 0)
  t.ok(different > 100, `the sample holds pairs where UTF-16 order is not byte order (${different})`)
})

t.test('reads an unsorted data dir with segments; writes it sorted with spk2utt derived', async (t) => {
  const audio = tmp('ktp-audio-')
  writeFileSync(join(audio, 'r1.wav'), 'RIFF-one')
  writeFileSync(join(audio, 'r2.wav'), 'RIFF-two')
  const d = mkdir({
    'wav.scp': `r2 ${join(audio, 'r2.wav')}\nr1 ${join(audio, 'r1.wav')}\n`,
    segments: 's1-b r1 1.5 2.25\ns2-a r2 0 -1\ns1-a r1 0 1.5\n',
    utt2spk: 's2-a s2\ns1-b s1\ns1-a s1\n',
    text: 's1-a hello world\ns1-b  two  spaces kept inside\n',
  })
  const { data, warnings } = readDataDir(d)
  t.same(uttIds(data), ['s1-a', 's1-b', 's2-a'])
  t.same(
    [...spk2utt(data.utt2spk)],
    [
      ['s1', ['s1-a', 's1-b']],
      ['s2', ['s2-a']],
    ],
  )
  t.same(data.segments!.get('s2-a'), { rec: 'r2', start: 0, end: null }, 'end -1 means to the end')
  t.match(warnings.join('\n'), /text: 1 utterance\(s\) have no entry, e.g. 's2-a'/)
  const out = tmp('ktp-datadir-out-')
  const w = writeDataDir(out, data)
  t.same(w.written.sort(), ['segments', 'spk2utt', 'text', 'utt2spk', 'wav.scp'])
  t.equal(readFileSync(join(out, 'segments'), 'utf8'), 's1-a r1 0 1.5\ns1-b r1 1.5 2.25\ns2-a r2 0 -1\n')
  t.equal(readFileSync(join(out, 'spk2utt'), 'utf8'), 's1 s1-a s1-b\ns2 s2-a\n')
  t.equal(readFileSync(join(out, 'text'), 'utf8'), 's1-a hello world\ns1-b two  spaces kept inside\n')
  t.same(writeDataDir(out, data).written, [], 'a rerun with the same content writes nothing')
  t.same(writeDataDir(out, { ...data, text: null }).written, ['-text'], 'a table the data no longer has is removed')
  t.notOk(existsSync(join(out, 'text')))
  writeDataDir(out, data)

  const { input, rows, errors } = await collect(d)
  t.equal(errors.length, 0)
  t.equal(input.total, 3)
  t.equal(input.schema.metadata.get('ktp.schema'), 'manifest@1')
  t.same(
    rows.map((b) => uttId(b)),
    ['s1-a', 's1-b', 's2-a'],
  )
  t.equal(getString(rows[1], 'speaker'), 's1')
  t.equal(getString(rows[1], 'audio'), join(audio, 'r1.wav'))
  t.equal(getNumber(rows[1], 'start'), 1.5)
  t.equal(getNumber(rows[1], 'end'), 2.25)
  t.equal(getNumber(rows[2], 'end'), null)
  t.equal(getString(rows[2], 'text'), null)
})

t.test('the fingerprint follows tables and audio bytes, not whitespace or order', async (t) => {
  const audio = tmp('ktp-audio-')
  const wav = join(audio, 'a.wav')
  writeFileSync(wav, 'first bytes')
  const d = mkdir({ 'wav.scp': `u1 ${wav}\n`, utt2spk: 'u1 s\n' })
  const fp1 = (await dataDirInput(d)).fingerprint
  t.equal(
    (await dataDirInput(d, { hashCache: false })).fingerprint,
    fp1,
    'same content, same fingerprint (cached or not)',
  )
  const d2 = mkdir({ 'wav.scp': `u1   ${wav}  \n`, utt2spk: 'u1 s\n\n' })
  t.equal((await dataDirInput(d2)).fingerprint, fp1, 'whitespace does not matter')
  writeFileSync(wav, 'other bytes!')
  const fp2 = (await dataDirInput(d, { hashCache: false })).fingerprint
  t.not(fp2, fp1, 'changed audio, changed fingerprint')
  writeFileSync(join(d, 'text'), 'u1 hi\n')
  t.not((await dataDirInput(d, { hashCache: false })).fingerprint, fp2, 'a new table changes it too')
})

t.test('hashFile: sha256 of the whole file, read through a reused chunk buffer', async (t) => {
  // golden values from Python's hashlib (sha256(bytes).hexdigest()[:32])
  const dir = tmp('ktp-hash-')
  const big = join(dir, 'big')
  writeFileSync(
    big,
    Uint8Array.from({ length: 200_001 }, (_, i) => (i * 31 + 7) & 255),
  )
  const empty = join(dir, 'empty')
  writeFileSync(empty, '')
  t.equal(await hashFile(big), 'f0262d9eba480ee746e20f70371276e0', 'four chunks and a tail')
  t.equal(await hashFile(empty), 'e3b0c44298fc1c149afbf4c8996fb924', 'no bytes')
  const small = Buffer.alloc(7)
  t.equal(await hashFile(big, small), 'f0262d9eba480ee746e20f70371276e0', 'a 7-byte buffer gives the same')
  t.equal(await hashFile(empty, small), 'e3b0c44298fc1c149afbf4c8996fb924', 'reused after a file: no stale bytes')
  await t.rejects(hashFile(join(dir, 'none')), { code: 'ENOENT' }, 'a missing file rejects')
})

t.test('the fingerprint, hashed line by line, is that of the canonical JSON of the whole tables', async (t) => {
  // the value the fingerprint had when it serialised every table at once (up-to-date checks
  // of existing outputs depend on it staying the same)
  const audio = tmp('ktp-audio-')
  const wav = join(audio, 'a.wav')
  writeFileSync(wav, 'some bytes')
  const d = mkdir({
    'wav.scp': `recB ${wav}\nrecA ${wav}\nrecC sox x.wav -t wav - |\nrecD /no/such.wav\n`,
    segments: 's1-u1 recA 0 0.1\ns1-u2 recA 0.1 -1\ns2-u3 recB 0.05 0.2\ns2-u4 recC 0 1\ns2-u5 recD 0 1\n',
    utt2spk: 's1-u1 s1\ns1-u2 s1\ns2-u3 s2\ns2-u4 s2\ns2-u5 s2\n',
    text: 's1-u1 héllo "wo\\\\rld" \u{1d11e} ünï\ns2-u3 tab\there \u0001\n',
    utt2dur: 's1-u1 0.1\ns1-u2 0.3\ns2-u3 0.15\n',
  })
  const { data } = readDataDir(d)
  const h = await hashFile(wav)
  const recs = [...data.wav.keys()].sort()
  const hashes: Record<string, string> = { recA: h, recB: h, recC: `cmd:${data.wav.get('recC')}`, recD: 'missing' }
  const want = hashBytes(canonicalJson(formatDataDir(data)), canonicalJson(recs.map((r) => [r, hashes[r]])))
  t.equal(await dataDirFingerprint(d, data, { hashCache: false }), want)
  t.match(readFileSync(join(d, 'text'), 'utf8'), /\\\\rld/, 'the text has escapes to make')
})

t.test('errors name the file and the line', async (t) => {
  const base = { 'wav.scp': 'a /x.wav\nb /y.wav\n', utt2spk: 'a s\nb s\n' }
  const err = (files: Record<string, string>) => {
    try {
      readDataDir(mkdir({ ...base, ...files }))
    } catch (e) {
      return (e as Error).message
    }
    return 'no error'
  }
  t.match(err({ 'wav.scp': 'a /x.wav\nb /y.wav\na /z.wav\n' }), /wav\.scp:3: duplicate id 'a' \(first on line 1\)/)
  t.match(
    err({ utt2spk: 'a s\nb s t\n' }),
    /utt2spk:2: expected 'utt speaker', got an id with spaces or extra fields: 'b s t'/,
  )
  t.match(err({ utt2spk: 'a s\n' }), /utt2spk: utterance 'b' \(from wav\.scp\) has no speaker/)
  t.match(err({ utt2spk: 'a s\nb s\nc s\n' }), /utt2spk: utterance 'c' is not in wav\.scp/)
  t.match(
    err({ segments: 'u1 zz 0 1\n', utt2spk: 'u1 s\n' }),
    /segments: utterance 'u1' names recording 'zz', which is not in wav\.scp/,
  )
  t.match(err({ segments: 'u1 a 2 1\n', utt2spk: 'u1 s\n' }), /expected 0 ≤ start < end, got start 2, end 1/)
  t.match(err({ segments: 'u1 a x 1\n', utt2spk: 'u1 s\n' }), /segments:1: start 'x' is not a number/)
  t.match(err({ spk2utt: 's a\n' }), /spk2utt:1: speaker 's' lists \[a\] but utt2spk gives \[a b\]/)
  t.match(err({ 'wav.scp': 'a\n' }), /wav\.scp:1: recording 'a' has no path or command/)
  t.throws(() => readDataDir('/nonexistent/dir'), /no such data directory/)
  const noSpk = mkdir({ 'wav.scp': 'a /x.wav\n' })
  t.throws(() => readDataDir(noSpk), /utt2spk: missing/)
  t.throws(
    () =>
      writeDataDir(tmp(), {
        wav: new Map([['a b', '/x']]),
        segments: null,
        utt2spk: new Map([['a b', 's']]),
        text: null,
        utt2dur: null,
      }),
    /recording id "a b" is empty or contains whitespace/,
  )
})

t.test('wav.scp commands: refused per utterance unless allowed, then run as written with sh -c', async (t) => {
  const audio = tmp('ktp-audio-')
  writeFileSync(join(audio, 'f.wav'), 'plain')
  const marker = join(audio, 'ran')
  const d = mkdir({
    'wav.scp': `c1 printf 'from-cmd' |\nc2 touch ${marker}; exit 3 |\nf1 ${join(audio, 'f.wav')}\n`,
    utt2spk: 'c1 s\nc2 s\nf1 s\n',
  })
  const refused = await collect(d)
  t.same(
    refused.rows.map((b) => uttId(b)),
    ['f1'],
    'the plain file still flows',
  )
  t.same(
    refused.errors.map((e) => [e.utt, e.code]),
    [
      ['c1', 'command-refused'],
      ['c2', 'command-refused'],
    ],
  )
  t.match(refused.errors[0].message, /--allow-commands/)
  await t.rejects(readAudioBytes("printf 'x' |", { utt: 'c1' }), { code: 'command-refused' })

  const allowed = await collect(d, true)
  t.equal(allowed.rows.length, 3)
  t.equal((await readAudioBytes("printf 'from-cmd' |", { utt: 'c1', allowCommands: true })).toString(), 'from-cmd')
  await t.rejects(readAudioBytes(`touch ${marker}; echo oops >&2; exit 3 |`, { utt: 'c2', allowCommands: true }), {
    code: 'command-failed',
    message: /c2 \(wav\.scp\): wav\.scp command .* exited with code 3: oops/,
  })
  t.equal((await readAudioBytes(join(audio, 'f.wav'), { utt: 'f1' })).toString(), 'plain')
  await t.rejects(readAudioBytes(join(audio, 'missing.wav'), { utt: 'm' }), {
    code: 'no-audio',
    message: /m \(wav\.scp\): audio file .*missing\.wav does not exist/,
  })
  // The id is never put into the command: a variable named like it stays unexpanded.
  t.equal(
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template literal
    (await readAudioBytes('printf \'%s\' "${UTT:-none}" |', { utt: 'c1', allowCommands: true })).toString(),
    'none',
  )
})

t.test('CTM read/write round trip; bad lines name the line', async (t) => {
  const text = 'u2 1 0.5 0.25 b\nu1 A 0.1 0.2 x 0.9\nu2 1 0 0.5 a\n'
  const ctm = parseCtm(text, 'x.ctm')
  t.same(
    ctm.get('u2')!.map((s) => s.label),
    ['a', 'b'],
    'sorted by start',
  )
  t.equal(ctm.get('u1')![0].conf, 0.9)
  t.equal(formatCtm(ctm), 'u1 A 0.1 0.2 x 0.9\nu2 1 0 0.5 a\nu2 1 0.5 0.25 b\n')
  t.same(parseCtm(formatCtm(ctm), 'y'), ctm)
  t.throws(
    () => parseCtm('u 1 0 0.1\n', 'x.ctm'),
    /x\.ctm:1: expected 'utt channel start dur label \[conf\]', got 4 fields/,
  )
  t.throws(() => parseCtm('\nu 1 -1 0.1 a\n', 'x.ctm'), /x\.ctm:2: utterance 'u': expected start ≥ 0/)
})

t.test('an empty data dir is valid and yields nothing', async (t) => {
  const d = mkdir({ 'wav.scp': '', utt2spk: '' })
  const { rows } = await collect(d)
  t.equal(rows.length, 0)
})

t.test('arrayStream (the data dir source): every item once, in order, one per pull', async (t) => {
  const { arrayStream } = await import('../pipeline/io/pull.js')
  const seen: number[] = []
  const s = arrayStream(Array.from({ length: 5000 }, (_, i) => i)).map((x) => {
    seen.push(x)
    return x * 2
  })
  const first = await new Promise((ok) => s.pull((_e, x) => ok(x)))
  t.equal(first, 0)
  t.same(seen, [0], 'nothing read ahead of the consumer')
  const rest: number[] = []
  await drain(
    s,
    (x) => void rest.push(x as number),
    () => false,
  )
  t.equal(rest.length, 4999)
  t.equal(rest[4998], 9998)
  t.ok(
    rest.every((x, i) => x === 2 * (i + 1)),
    'in order',
  )
  t.same(await new Promise((ok) => arrayStream([]).toArray(ok)), [], 'an empty array ends at once')
})

t.test('resolveEntry is path.resolve (it only skips the work for normal absolute paths)', async (t) => {
  const { resolve } = await import('node:path')
  const { resolveEntry } = await import('../stages/formats/datadir-io.js')
  const entries = ['/a/b.wav', '/a//b', '/a/./b', '/a/../b', '/a/b/', '/', '//', '/.', '/..', '/a/.b', '/a/..b']
  entries.push('/a/b..', '/a/...', 'rel/x', './x', '/a/b/.', '/a/b/..', '/ü/ß.wav', '/a\\b', '/a/ b', '/.hidden/x', '')
  for (const e of entries) t.equal(resolveEntry(e), resolve(e), JSON.stringify(e))
})
