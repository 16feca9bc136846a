import t from 'tap'
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, ktp, tmp } from './helpers.js'
import { prepare, speakersByFraction } from '../stages/prepare/stage.js'
import { readDataDir } from '../stages/formats/kaldi-datadir.js'
import { parseCtm } from '../stages/formats/ctm.js'

const FSDD = join(ROOT, 'fixtures', 'fsdd', 'recordings')
const SHARED_TIMIT = join(ROOT, '..', 'shared', 'data', 'timit-format')

/** 20 FSDD files (take 0 of the ten digits by two speakers) copied into a tmp corpus folder. */
function smallFsdd(): string {
  const src = tmp('ktp-fsdd-')
  mkdirSync(join(src, 'recordings'))
  const pick = readdirSync(FSDD)
    .filter((n) => /^\d_(george|jackson)_0\.wav$/.test(n))
    .slice(0, 20)
  for (const n of pick) copyFileSync(join(FSDD, n), join(src, 'recordings', n))
  writeFileSync(join(src, 'recordings', 'notes.wav'), 'not a digit file')
  return src
}

function lines(path: string): string[] {
  return readFileSync(path, 'utf8').trim().split('\n')
}

/** A 16-bit mono RIFF/WAVE file of `n` zero samples. */
function wav(n: number, rate: number): Buffer {
  const b = Buffer.alloc(44 + 2 * n)
  b.write('RIFF', 0)
  b.writeUInt32LE(36 + 2 * n, 4)
  b.write('WAVE', 8)
  b.write('fmt ', 12)
  b.writeUInt32LE(16, 16)
  b.writeUInt16LE(1, 20)
  b.writeUInt16LE(1, 22)
  b.writeUInt32LE(rate, 24)
  b.writeUInt32LE(rate * 2, 28)
  b.writeUInt16LE(2, 32)
  b.writeUInt16LE(16, 34)
  b.write('data', 36)
  b.writeUInt32LE(2 * n, 40)
  return b
}

t.test('fsdd: ids, digit words, speakers, durations; a rerun writes nothing', async (t) => {
  const src = smallFsdd()
  const out = join(tmp(), 'd')
  const r = ktp(['prepare', 'fsdd', src, '-o', out])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stderr, /1 \.wav file\(s\) not named \{digit\}_\{speaker\}_\{take\}\.wav; skipped/)
  const utts = lines(join(out, 'utt2spk'))
  t.equal(utts.length, 20)
  t.equal(utts[0], 'george-0-0 george')
  t.ok(lines(join(out, 'text')).includes('george-7-0 seven'))
  t.match(lines(join(out, 'wav.scp'))[0], /^george-0-0 \/.*recordings\/0_george_0\.wav$/)
  const dur = Number(lines(join(out, 'utt2dur'))[0].split(' ')[1])
  const bytes = statSync(join(FSDD, '0_george_0.wav')).size
  t.ok(Math.abs(dur - (bytes - 44) / 2 / 8000) < 0.01, `duration ${dur} s from the header (8 kHz, 16 bit)`)
  t.equal(lines(join(out, 'spk2utt')).length, 2)
  const { warnings } = readDataDir(out)
  t.same(warnings, [], 'the result validates without warnings')
  const mtime = statSync(join(out, 'wav.scp')).mtimeMs
  const again = ktp(['prepare', 'fsdd', join(src, 'recordings'), '-o', out])
  t.match(again.stderr, /20 utterances, 2 speakers \(up to date\)/, 'the files directly, same result')
  t.equal(statSync(join(out, 'wav.scp')).mtimeMs, mtime)
})

t.test('fsdd split by --test-speakers; unknown speakers are a usage error', async (t) => {
  const src = smallFsdd()
  const out = join(tmp(), 'd')
  const r = ktp(['prepare', 'fsdd', src, '-o', out, '--test-speakers', 'jackson'])
  t.equal(r.code, 0, r.stderr)
  t.ok(lines(join(out, 'test', 'utt2spk')).every((l) => l.endsWith(' jackson')))
  t.notOk(lines(join(out, 'train', 'utt2spk')).some((l) => l.endsWith(' jackson')))
  t.equal(lines(join(out, 'test', 'utt2spk')).length + lines(join(out, 'train', 'utt2spk')).length, 20)
  const bad = ktp(['prepare', 'fsdd', src, '-o', out, '--test-speakers', 'nobody'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /--test-speakers: no speaker 'nobody' in the corpus; it has george, jackson/)
})

t.test('split by fraction is deterministic and by speaker; 0 puts all in train; --test-utts adds', async (t) => {
  const spk = Array.from({ length: 10 }, (_, i) => `s${i}`)
  const a = speakersByFraction(spk, 0.3)
  t.equal(a.size, 3)
  t.same([...speakersByFraction([...spk].reverse(), 0.3)].sort(), [...a].sort(), 'independent of input order')
  t.equal(speakersByFraction(spk, 0).size, 0)
  t.equal(speakersByFraction(['x', 'y'], 0.01).size, 1, 'at least one test speaker when 0 < F')
  t.equal(speakersByFraction(['x', 'y'], 0.99).size, 1, 'at least one train speaker when F < 1')

  const src = smallFsdd()
  const out = join(tmp(), 'd')
  const r = prepare('fsdd', src, out, { testFraction: 0, testUtts: 'george-3-0', skipSa: false })
  t.same(
    r.parts.map((p) => p.utterances),
    [19, 1],
  )
  t.equal(lines(join(out, 'test', 'wav.scp')).length, 1)
  t.throws(
    () => prepare('fsdd', src, out, { testUtts: 'nope-1-1', skipSa: false }),
    /--test-utts: no utterance 'nope-1-1'/,
  )
})

t.test('timit, LDC layout in upper case: own TRAIN/TEST division, phones.ctm in seconds', async (t) => {
  const src = tmp('ktp-timit-')
  const put = (rel: string, content: string | Buffer) => {
    mkdirSync(join(src, rel, '..'), { recursive: true })
    writeFileSync(join(src, rel), content)
  }
  put('TRAIN/DR1/FCJF0/SA1.WAV', wav(16000, 16000))
  put('TRAIN/DR1/FCJF0/SA1.PHN', '0 3200 h#\n3200 8000 sh\n8000 16000 iy\n')
  put('TRAIN/DR1/FCJF0/SA1.TXT', '0 16000 She had.\n')
  put('TRAIN/DR1/FCJF0/SI648.WAV', wav(8000, 16000))
  put('TEST/DR2/MABC0/SX1.WAV', wav(4000, 16000))
  put('TEST/DR2/MABC0/SX1.PHN', '0 4000 q\n')
  const out = join(tmp(), 'timit')
  const r = ktp(['prepare', 'timit', src, '-o', out])
  t.equal(r.code, 0, r.stderr)
  t.same(lines(join(out, 'train', 'utt2spk')), ['fcjf0-sa1 fcjf0', 'fcjf0-si648 fcjf0'])
  t.same(lines(join(out, 'test', 'utt2spk')), ['mabc0-sx1 mabc0'])
  t.same(lines(join(out, 'train', 'text')), ['fcjf0-sa1 She had.'])
  t.same(lines(join(out, 'train', 'utt2dur')), ['fcjf0-sa1 1', 'fcjf0-si648 0.5'])
  const ctm = parseCtm(readFileSync(join(out, 'train', 'phones.ctm'), 'utf8'), 'phones.ctm')
  t.same(
    ctm.get('fcjf0-sa1')!.map((s) => [s.start, s.dur, s.label]),
    [
      [0, 0.2, 'h#'],
      [0.2, 0.3, 'sh'],
      [0.5, 0.5, 'iy'],
    ],
  )
  t.same(lines(join(out, 'test', 'phones.ctm')), ['mabc0-sx1 1 0 0.25 q'])

  const skip = ktp(['prepare', 'timit', src, '-o', join(tmp(), 't2'), '--skip-sa', '--test-speakers', 'fcjf0'])
  t.equal(skip.code, 0, skip.stderr)
  t.match(skip.stderr, /override the corpus' own TRAIN\/TEST division/)
  t.match(skip.stderr, /test: 1 utterances/)
})

t.test(
  'timit, flat layout from ../shared (one folder per speaker, RIFF and SPHERE .wav)',
  {
    skip: existsSync(SHARED_TIMIT)
      ? false
      : `../shared/data/timit-format is absent (${SHARED_TIMIT}); the real-TIMIT check is skipped`,
  },
  async (t) => {
    const out = join(tmp(), 'timit')
    const r = ktp(['prepare', 'timit', SHARED_TIMIT, '-o', out, '--test-fraction', '0'])
    t.equal(r.code, 0, r.stderr)
    t.same(lines(join(out, 'train', 'utt2spk')), ['fvmh0-sa1 fvmh0', 'fvmh0-si836 fvmh0'])
    t.equal(readFileSync(join(out, 'test', 'utt2spk'), 'utf8'), '', 'fraction 0: everything in train')
    const ctm = parseCtm(readFileSync(join(out, 'train', 'phones.ctm'), 'utf8'), 'phones.ctm')
    const sa1 = ctm.get('fvmh0-sa1')!
    t.same([sa1[0].label, sa1[0].start, sa1[0].dur], ['h#', 0, 7812 / 16000], '.phn samples / 16 kHz from the header')
    t.same([sa1[1].label, sa1[1].start], ['sh', 7812 / 16000])
    t.ok(ctm.get('fvmh0-si836')!.length > 10, "the SPHERE file's alignment too")
    const durs = lines(join(out, 'train', 'utt2dur')).map((l) => Number(l.split(' ')[1]))
    t.ok(
      durs.every((d) => d > 2 && d < 6),
      `durations ${durs} from RIFF and SPHERE headers`,
    )
  },
)

t.test('tsv and kaldi formats; clear errors for bad input', async (t) => {
  const dir = tmp('ktp-tsv-')
  writeFileSync(join(dir, 'a.wav'), wav(800, 8000))
  writeFileSync(
    join(dir, 'list.tsv'),
    'utt\tpath\tspeaker\ttranscript\nspk1-u1\ta.wav\tspk1\thello there\nspk2-u1\ta.wav\tspk2\n',
  )
  const out = join(tmp(), 'tsv')
  t.equal(ktp(['prepare', 'tsv', join(dir, 'list.tsv'), '-o', out]).code, 0)
  t.same(lines(join(out, 'text')), ['spk1-u1 hello there'])
  t.same(lines(join(out, 'utt2dur')), ['spk1-u1 0.1', 'spk2-u1 0.1'])
  t.match(
    lines(join(out, 'wav.scp'))[0],
    new RegExp(`^spk1-u1 ${dir}/a\\.wav$`),
    'relative paths resolved against the TSV',
  )

  const norm = join(tmp(), 'norm')
  const k = ktp(['prepare', 'kaldi', out, '-o', norm])
  t.equal(k.code, 0, k.stderr)
  t.equal(readFileSync(join(norm, 'wav.scp'), 'utf8'), readFileSync(join(out, 'wav.scp'), 'utf8'))

  writeFileSync(join(dir, 'bad.tsv'), 'u1\ta.wav\n')
  const bad = ktp(['prepare', 'tsv', join(dir, 'bad.tsv'), '-o', join(tmp(), 'x')])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /bad\.tsv:1: expected 'utt<TAB>path<TAB>speaker<TAB>transcript', got 2 tab-separated field\(s\)/)
  const dup = join(dir, 'dup.tsv')
  writeFileSync(dup, 'u1\ta.wav\ts\nu1\ta.wav\ts\n')
  t.match(ktp(['prepare', 'tsv', dup, '-o', join(tmp(), 'x')]).stderr, /dup\.tsv:2: utterance id 'u1' already used/)
  const fmt = ktp(['prepare', 'wsj', dir, '-o', join(tmp(), 'x')])
  t.equal(fmt.code, 2)
  t.match(fmt.stderr, /unknown corpus format 'wsj'; expected one of kaldi, timit, fsdd, tsv/)
  t.match(ktp(['prepare', 'fsdd', join(dir, 'nope'), '-o', join(tmp(), 'x')]).stderr, /nope: no such file or directory/)
  t.match(ktp(['prepare', 'fsdd', dir]).stderr, /give the data dir to write with -o DATADIR/)
})
