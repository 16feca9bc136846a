// `ktp features` end to end (dist/ CLI): values against torchaudio goldens, segments, stdin manifests,
// bad inputs as per-utterance errors, options, metadata.
// FSDD goldens: fixtures/golden/kaldi-features.json (/usr/bin/python3 fixtures/golden/make_golden.py).
// TIMIT goldens are made at test time (licence) by
//   /usr/bin/python3 fixtures/golden/make_golden.py --timit ../shared/data/timit-format/dr1-fvmh0 --out $TMP/timit.json
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { RecordBatchReader } from 'apache-arrow'
import { decodeAudio } from '../stages/audio/decode.js'
import { encodeWav16 } from '../stages/audio/wav-write.js'
import { computeFbank, parseFbankOptions } from '../stages/dsp/kaldi-features.js'
import { manifestBatch, manifestSchema } from '../stages/formats/kaldi-datadir.js'
import { BatchEncoder } from '../pipeline/io/arrow-encoder.js'
import { getMatrix, rowsOf, uttId } from '../schemas/utterance.js'
import { ROOT, ktp, tmp } from './helpers.js'

const FSDD = join(ROOT, 'fixtures/fsdd/recordings')
const SHARED = join(ROOT, '../shared/data')
const dir = tmp('ktp-features-')

/** A Kaldi data dir: wav.scp + utt2spk (+ segments). `recs`: id → wav.scp entry. */
function dataDir(
  name: string,
  recs: Record<string, string>,
  segments?: Record<string, [string, number, number]>,
): string {
  const d = join(dir, name)
  mkdirSync(d, { recursive: true })
  const ids = Object.keys(recs).sort()
  writeFileSync(join(d, 'wav.scp'), ids.map((r) => `${r} ${recs[r]}\n`).join(''))
  const utts = segments ? Object.keys(segments).sort() : ids
  writeFileSync(join(d, 'utt2spk'), utts.map((u) => `${u} ${u.split('-')[0]}\n`).join(''))
  if (segments) writeFileSync(join(d, 'segments'), utts.map((u) => `${u} ${segments[u].join(' ')}\n`).join(''))
  return d
}

/** FSDD file name → utterance id speaker-digit-take (speaker first, as Kaldi wants). */
const uttOf = (f: string) => {
  const [d, s, k] = f.replace(/\.wav$/, '').split('_')
  return `${s}-${d}-${k}`
}

type Feats = Map<string, { frames: number; dim: number; data: Float32Array }>
function readFeats(src: string | Uint8Array): { meta: Map<string, string>; utts: string[]; feats: Feats } {
  const reader = RecordBatchReader.from(typeof src === 'string' ? readFileSync(src) : src).open()
  const meta = reader.schema.metadata // read before iterating: the reader lets go of it at the end
  const feats: Feats = new Map()
  const utts: string[] = []
  for (const batch of reader) {
    for (const row of rowsOf(batch)) {
      const m = getMatrix(row, 'feats')
      utts.push(uttId(row))
      feats.set(uttId(row), { frames: m.frames, dim: m.width, data: m.data.slice() })
    }
  }
  return { meta, utts, feats }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]))
  return m
}

interface GoldenCase {
  name: string
  audio: string
  kind: 'fbank' | 'mfcc'
  options: Record<string, unknown>
  numFrames: number
  dim: number
  data: string
}
const f32 = (b64: string) => {
  const u = new Uint8Array(Buffer.from(b64, 'base64'))
  return new Float32Array(u.buffer, 0, u.byteLength / 4)
}

/** Run `ktp features` on a data dir for each golden case's options; compare every value. */
function checkGoldens(tt: Test, cases: GoldenCase[], ddir: string, uttFor: (audio: string) => string): void {
  let worst = 0
  for (const c of cases) {
    const out = join(dir, `golden-${cases.indexOf(c)}-${c.kind}-${c.numFrames}.arrow`)
    const bins = String(c.options.numMelBins)
    const r = ktp([
      'features',
      ddir,
      '--type',
      c.kind,
      '--num-mel-bins',
      bins,
      '--dither',
      '0',
      '--sample-frequency',
      String(c.options.sampleFrequency),
      '-o',
      out,
      '--quiet',
    ])
    tt.equal(r.code, 0, r.stderr)
    const got = readFeats(out).feats.get(uttFor(c.audio))
    if (!tt.ok(got, `${c.name}: utterance present`) || !got) continue
    tt.same([got.frames, got.dim], [c.numFrames, c.dim], `${c.name}: shape`)
    const d = maxAbsDiff(got.data, f32(c.data))
    worst = Math.max(worst, d)
    tt.ok(d <= 1e-3, `${c.name}: max |Δ| ${d.toExponential(2)} ≤ 1e-3`)
  }
  tt.comment(`worst max |Δ| vs torchaudio: ${worst.toExponential(3)}`)
}

t.test('FSDD: fbank and mfcc through the CLI match the torchaudio goldens', async (tt) => {
  const doc = JSON.parse(readFileSync(join(ROOT, 'fixtures/golden/kaldi-features.json'), 'utf8')) as {
    cases: GoldenCase[]
  }
  const cases = doc.cases.filter((c) => / (defaults|40 bins)$/.test(c.name))
  tt.equal(cases.length, 12, '3 recordings × fbank/mfcc × 23/40 bins')
  const files = [...new Set(cases.map((c) => c.audio))]
  const ddir = dataDir('golden', Object.fromEntries(files.map((f) => [uttOf(f), join(FSDD, f)])))
  checkGoldens(tt, cases, ddir, uttOf)
})

function timitSkip(): string | false {
  if (!existsSync(join(SHARED, 'timit-format')))
    return `skipped: ${join(SHARED, 'timit-format')} not found (needs ../shared)`
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import torchaudio'], { stdio: 'ignore' })
  } catch {
    return 'skipped: /usr/bin/python3 with torchaudio not found'
  }
  return false
}

t.test(
  'TIMIT format: ktp prepare timit, then features of the RIFF and the SPHERE file match torchaudio',
  { skip: timitSkip() },
  async (tt) => {
    const prep = join(dir, 'timit')
    const p = ktp(['prepare', 'timit', join(SHARED, 'timit-format'), '-o', prep, '--test-fraction', '0'])
    tt.equal(p.code, 0, p.stderr)
    const golden = join(dir, 'timit-golden.json')
    execFileSync(
      '/usr/bin/python3',
      [
        join(ROOT, 'fixtures/golden/make_golden.py'),
        '--timit',
        join(SHARED, 'timit-format/dr1-fvmh0'),
        '--out',
        golden,
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    )
    const cases = (JSON.parse(readFileSync(golden, 'utf8')) as { cases: GoldenCase[] }).cases
    tt.equal(cases.length, 4, 'sa1 (RIFF) and si836 (SPHERE) × fbank/mfcc')
    checkGoldens(tt, cases, join(prep, 'train'), (audio) => `fvmh0-${audio.replace(/\.wav$/, '')}`)
  },
)

t.test('segments cut [start, end) of the recording; a manifest stream on stdin works too', async (tt) => {
  const f = '0_george_0.wav'
  const ddir = dataDir(
    'seg',
    { george: join(FSDD, f) },
    { 'george-a': ['george', 0.1, 0.3], 'george-b': ['george', 0.05, -1] },
  )
  const r = ktp(['features', ddir, '--dither', '0', '-o', '-', '--quiet'])
  tt.equal(r.code, 0, r.stderr)
  const got = readFeats(r.stdout)
  const x = decodeAudio(readFileSync(join(FSDD, f))).samples
  const o = parseFbankOptions({ sampleFrequency: 8000, dither: 0 })
  tt.equal(
    maxAbsDiff(got.feats.get('george-a')!.data, computeFbank(x.subarray(800, 2400), o).data),
    0,
    '[0.1, 0.3) s = samples [800, 2400)',
  )
  tt.equal(maxAbsDiff(got.feats.get('george-b')!.data, computeFbank(x.subarray(400), o).data), 0, 'end -1 = to the end')

  // The same utterances as a manifest@1 stream on stdin give the same bytes of features.
  const schema = manifestSchema()
  const enc = new BatchEncoder(schema, 'stream')
  const parts = [...enc.begin()]
  for (const [utt, start, end] of [
    ['george-a', 0.1, 0.3],
    ['george-b', 0.05, null],
  ] as const) {
    parts.push(
      ...enc.encode(
        manifestBatch(schema, { utt, speaker: 'george', audio: join(FSDD, f), rec: 'george', start, end, text: null }),
      ),
    )
  }
  parts.push(...enc.finish())
  const s = ktp(['features', '-', '--dither', '0', '--sample-frequency', '8000', '-o', '-', '--quiet'], {
    input: Buffer.concat(parts),
  })
  tt.equal(s.code, 0, s.stderr)
  const viaStdin = readFeats(s.stdout)
  tt.same(viaStdin.utts, ['george-a', 'george-b'])
  for (const u of viaStdin.utts)
    tt.equal(maxAbsDiff(viaStdin.feats.get(u)!.data, got.feats.get(u)!.data), 0, `${u}: same values from stdin`)
})

t.test('bad inputs: one error per utterance naming the file, the others written, exit 1', async (tt) => {
  const good = ['0_george_0.wav', '5_jackson_12.wav', '9_yweweler_30.wav']
  const bad = join(dir, 'bad')
  mkdirSync(bad, { recursive: true })
  const wav8k = readFileSync(join(FSDD, good[0]))
  const files = {
    truncated: wav8k.subarray(0, 30), // cut inside the fmt chunk
    empty: encodeWav16(new Float32Array(0), 8000), // a valid header, zero samples
    rate: encodeWav16(decodeAudio(wav8k).samples, 16000), // 16 kHz where 8 kHz is asked for
    unknown: Buffer.from('OggS\0\x02 this is not a RIFF or SPHERE file'),
  }
  const recs: Record<string, string> = Object.fromEntries(good.map((f) => [uttOf(f), join(FSDD, f)]))
  for (const [k, b] of Object.entries(files)) {
    writeFileSync(join(bad, `${k}.wav`), b)
    recs[`bad-${k}`] = join(bad, `${k}.wav`)
  }
  recs['bad-missing'] = join(bad, 'missing.wav')
  const ddir = dataDir('bad-dir', recs)
  const out = join(dir, 'bad.arrow')
  const r = ktp(['features', ddir, '--dither', '0', '--sample-frequency', '8000', '-o', out, '--quiet'])
  tt.equal(r.code, 1, 'exit 1: some utterances failed')
  for (const [k, re] of [
    ['truncated', /truncated|cut off/],
    ['empty', /no samples/],
    ['rate', /16000 Hz but --sample-frequency is 8000/],
    ['unknown', /not a RIFF\/WAVE or NIST SPHERE/],
    ['missing', /does not exist/],
  ] as const) {
    const line = r.stderr.split('\n').find((l) => l.includes(`bad-${k} `))
    tt.ok(line, `bad-${k}: reported`)
    tt.ok(line?.includes(join(bad, `${k}.wav`)), `bad-${k}: names the file`)
    tt.match(line ?? '', re, `bad-${k}: says why`)
  }
  tt.match(r.stderr, /done 3, failed 5/)
  tt.same(readFeats(out).utts, good.map(uttOf).sort(), 'the good utterances are written, in order')
  // workers answer in chunks of several utterances: failures inside a chunk still come back one by one
  const out2 = join(dir, 'bad-jobs2.arrow')
  const r2 = ktp([
    'features',
    ddir,
    '--dither',
    '0',
    '--sample-frequency',
    '8000',
    '-o',
    out2,
    '--quiet',
    '--jobs',
    '2',
  ])
  tt.equal(r2.code, 1, '--jobs 2: exit 1')
  tt.match(r2.stderr, /done 3, failed 5/, '--jobs 2: same accounting')
  for (const k of Object.keys(files).concat('missing'))
    tt.ok(r2.stderr.includes(`bad-${k} (${join(bad, `${k}.wav`)})`), `--jobs 2: bad-${k} reported with its file`)
  tt.equal(
    createHash('sha256').update(readFileSync(out2)).digest('hex'),
    createHash('sha256').update(readFileSync(out)).digest('hex'),
    '--jobs 2: same file',
  )
  const res = ktp([
    'features',
    ddir,
    '--dither',
    '0',
    '--sample-frequency',
    '8000',
    '--resample',
    '-o',
    join(dir, 'bad-resampled.arrow'),
    '--quiet',
  ])
  tt.match(res.stderr, /done 4, failed 4/, '--resample turns the 16 kHz file into a good utterance')
})

t.test('options: Kaldi names, errors naming option and value, metadata, up-to-date runs', async (tt) => {
  const ddir = dataDir('opts', { [uttOf('0_george_0.wav')]: join(FSDD, '0_george_0.wav') })
  const bad = ktp(['features', ddir, '--frame-shift', '-3', '-o', join(dir, 'x.arrow')])
  tt.equal(bad.code, 2)
  tt.match(bad.stderr, /--frame-shift: expected number to be >0, got -3/)
  const geo = ktp(['features', ddir, '--type', 'mfcc', '--num-ceps', '30', '-o', join(dir, 'x.arrow')])
  tt.match(geo.stderr, /--num-ceps: must not exceed numMelBins \(23\), got 30/)
  const out = join(dir, 'opts.arrow')
  const r = ktp(['features', ddir, '--type', 'mfcc', '--frame-shift', '5', '--use-energy', '-o', out])
  tt.equal(r.code, 0, r.stderr)
  tt.match(
    r.stderr,
    /--sample-frequency 8000 \(the rate of the audio\)/,
    'unset --sample-frequency: taken from the audio',
  )
  const f = readFeats(out)
  tt.equal(f.meta.get('ktp.schema'), 'features@1')
  tt.equal(f.meta.get('ktp.feature_type'), 'mfcc')
  tt.equal(f.meta.get('ktp.frame_shift_ms'), '5')
  tt.equal(f.meta.get('ktp.frame_length_ms'), '25')
  tt.equal(f.meta.get('ktp.sample_frequency'), '8000')
  const producer = JSON.parse(f.meta.get('ktp.producer')!)
  tt.match(producer.options, { type: 'mfcc', numCeps: 13, frameShift: 5, useEnergy: true, dither: 1 })
  tt.notOk('usePower' in producer.options, 'fbank-only options do not enter an mfcc fingerprint')
  tt.equal(
    ktp(['features', ddir, '--type', 'mfcc', '--frame-shift', '5', '--use-energy', '-o', out]).stderr.includes(
      'up to date',
    ),
    true,
    'same command again: up to date',
  )
  const again = ktp([
    'features',
    ddir,
    '--type',
    'mfcc',
    '--frame-shift',
    '5',
    '--use-energy',
    '--seed',
    '3',
    '-o',
    out,
    '--quiet',
  ])
  tt.equal(again.code, 0)
  tt.not(
    readFeats(out).meta.get('ktp.fingerprint'),
    f.meta.get('ktp.fingerprint'),
    'another dither seed: another fingerprint, recomputed',
  )
})
