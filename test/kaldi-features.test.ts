// Goldens: fixtures/golden/kaldi-features.json, made by
//   /usr/bin/python3 fixtures/golden/make_golden.py
// (torch 1.13 + torchaudio 0.13, torchaudio.compliance.kaldi.fbank/mfcc run in float64, dither 0, Kaldi
// defaults; see the script's docstring for why float64). Log features must match to |Δ| ≤ 1e-3 absolute;
// linear mel energies (useLogFbank false, values ~1e9) to 1e-3 relative, which is the same in log terms.
// The MFCC residue (~2.5e-4) is torchaudio's: its DCT matrix (create_dct) is float32, off by 4.7e-7,
// times |log mel| ~20, summed over the bins, times the lifter (up to 12).
// TIMIT-format goldens are made at test time (never committed: licence) by
//   /usr/bin/python3 fixtures/golden/make_golden.py --timit ../shared/data/timit-format/dr1-fvmh0 --out $TMP/timit.json
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { decodeAudio } from '../stages/audio/decode.js'
import {
  computeFbank,
  computeMfcc,
  FeatureOptionsError,
  numFrames,
  parseFbankOptions,
  parseMfccOptions,
  seedFor,
  fbankOptionsSchema,
  type Features,
} from '../stages/dsp/kaldi-features.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const fsdd = join(root, 'fixtures/fsdd/recordings')
const timitDir = join(root, '../shared/data/timit-format/dr1-fvmh0')
const TOL = 1e-3

interface GoldenCase {
  name: string
  audio: string
  kind: 'fbank' | 'mfcc'
  options: Record<string, unknown>
  numFrames: number
  dim: number
  data: string
}

function f32(b64: string): Float32Array {
  const buf = Buffer.from(b64, 'base64')
  const copy = new Uint8Array(buf) // aligned copy
  return new Float32Array(copy.buffer, 0, copy.byteLength / 4)
}

function compute(c: GoldenCase, samples: Float32Array): Features {
  return c.kind === 'fbank'
    ? computeFbank(samples, parseFbankOptions(c.options))
    : computeMfcc(samples, parseMfccOptions(c.options))
}

/** Compare every value of every frame; report the largest |Δ| of the whole set. */
function checkCases(tt: Test, cases: GoldenCase[], dir: string): void {
  let worst = 0
  let worstName = ''
  for (const c of cases) {
    const audio = decodeAudio(readFileSync(join(dir, c.audio)), { name: c.audio })
    tt.equal(audio.sampleRate, c.options.sampleFrequency, `${c.name}: sample rate`)
    const got = compute(c, audio.samples)
    const want = f32(c.data)
    tt.equal(got.numFrames, c.numFrames, `${c.name}: frames`)
    tt.equal(got.dim, c.dim, `${c.name}: dim`)
    const relative = c.options.useLogFbank === false
    let max = 0
    for (let i = 0; i < want.length; i++) {
      const d = Math.abs(got.data[i] - want[i])
      max = Math.max(max, relative ? d / Math.max(1, Math.abs(want[i])) : d)
    }
    tt.ok(max <= TOL, `${c.name}: max ${relative ? 'relative ' : ''}|Δ| ${max.toExponential(2)} ≤ ${TOL}`)
    if (!relative && max > worst) {
      worst = max
      worstName = c.name
    }
  }
  tt.comment(`max |Δ| over ${cases.length} cases (log features): ${worst.toExponential(3)} (${worstName})`)
}

t.test('FSDD goldens (torchaudio.compliance.kaldi)', async (tt) => {
  const doc = JSON.parse(readFileSync(join(root, 'fixtures/golden/kaldi-features.json'), 'utf8')) as {
    cases: GoldenCase[]
  }
  tt.ok(doc.cases.length >= 40, 'golden set is complete')
  checkCases(tt, doc.cases, fsdd)
})

// Skipped, with the reason, where the reference python or the shared TIMIT-format files are missing.
function timitSkipReason(): string | false {
  const py = '/usr/bin/python3'
  if (!existsSync(timitDir)) return `TIMIT goldens skipped: ${timitDir} not found`
  if (!existsSync(py)) return `TIMIT goldens skipped: ${py} not found`
  try {
    execFileSync(py, ['-c', 'import torchaudio'], { stdio: 'ignore' })
  } catch {
    return `TIMIT goldens skipped: ${py} has no torchaudio`
  }
  return false
}

t.test('TIMIT-format goldens (RIFF sa1, SPHERE si836), made at test time', { skip: timitSkipReason() }, async (tt) => {
  const py = '/usr/bin/python3'
  const out = join(mkdtempSync(join(tmpdir(), 'ktp-golden-')), 'timit.json')
  execFileSync(py, [join(root, 'fixtures/golden/make_golden.py'), '--timit', timitDir, '--out', out], {
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const doc = JSON.parse(readFileSync(out, 'utf8')) as { cases: GoldenCase[] }
  tt.equal(doc.cases.length, 4)
  checkCases(tt, doc.cases, timitDir)
})

const george = decodeAudio(readFileSync(join(fsdd, '0_george_0.wav')), { name: '0_george_0.wav' })

t.test('seeded dither: reproducible, seed-dependent, small', async (tt) => {
  const o = parseFbankOptions({ sampleFrequency: 8000, dither: 1, seed: 7 })
  const a = computeFbank(george, o)
  const b = computeFbank(george, parseFbankOptions({ sampleFrequency: 8000, dither: 1, seed: 7 }))
  tt.same(a.data, b.data, 'same seed (fresh options object) → identical features')
  const c = computeFbank(george, o, 8)
  let diff = 0
  for (let i = 0; i < a.data.length; i++) diff = Math.max(diff, Math.abs(a.data[i] - c.data[i]))
  tt.ok(diff > 1e-4, `seed 7 vs seed 8 differ (max |Δ| ${diff.toExponential(2)})`)
  // dither of 1 LSB barely moves the log mel energies of real speech
  const exact = computeFbank(george, parseFbankOptions({ sampleFrequency: 8000, dither: 0 }))
  let sum = 0
  for (let i = 0; i < a.data.length; i++) sum += Math.abs(a.data[i] - exact.data[i])
  const mean = sum / a.data.length
  tt.ok(mean > 0 && mean < 0.05, `mean |dithered − exact| = ${mean.toExponential(2)} is small but non-zero`)
  tt.not(seedFor(0, 'utt1'), seedFor(0, 'utt2'), 'per-utterance seeds differ')
  tt.equal(seedFor(3, 'utt1'), seedFor(3, 'utt1'), 'per-utterance seeds are stable')
})

t.test('dither noise is Gaussian with the requested deviation', async (tt) => {
  // raw log energy of dithered silence without DC removal: E[Σ over 400 samples of N(0, σ²)²] = 400 σ²
  const o = parseFbankOptions({ dither: 2, seed: 1, removeDcOffset: false, useEnergy: true })
  const f = computeFbank(new Float32Array(16000), o)
  let mean = 0
  for (let i = 0; i < f.numFrames; i++) mean += Math.exp(f.data[i * f.dim]) / 400
  mean /= f.numFrames
  tt.ok(Math.abs(mean - 4) < 0.1, `mean squared dither ${mean.toFixed(3)} ≈ σ² = 4`)
})

t.test('frame counts follow Kaldi', async (tt) => {
  const o = parseFbankOptions({ dither: 0 })
  tt.equal(numFrames(16000, o), 98)
  tt.equal(numFrames(399, o), 0)
  tt.equal(numFrames(16000, { ...o, snipEdges: false }), 100)
  const short = computeFbank(new Float32Array(100), o)
  tt.same([short.numFrames, short.dim, short.data.length], [0, 23, 0], 'too short for one frame: no frames')
  // snipEdges false on a signal shorter than a frame reflects repeatedly and still works
  const tiny = computeFbank(
    Float32Array.from([1, -2, 3, 5, 0, 7]),
    parseFbankOptions({ dither: 0, snipEdges: false, frameShift: 0.25 }),
  )
  tt.equal(tiny.numFrames, 2, '(6 + 4/2) / 4 = 2 frames')
  tt.ok(tiny.data.every(Number.isFinite), 'finite features from a reflected 6-sample signal')
})

t.test('options: defaults, schema descriptions, errors naming option and value', async (tt) => {
  const d = parseFbankOptions()
  tt.match(d, {
    frameLength: 25,
    frameShift: 10,
    preemphasisCoefficient: 0.97,
    windowType: 'povey',
    removeDcOffset: true,
    dither: 1,
    numMelBins: 23,
    lowFreq: 20,
    highFreq: 0,
    snipEdges: true,
    useEnergy: false,
    energyFloor: 0,
    rawEnergy: true,
    usePower: true,
    useLogFbank: true,
    roundToPowerOfTwo: true,
    sampleFrequency: 16000,
    blackmanCoeff: 0.42,
    htkCompat: false,
    seed: 0,
  })
  tt.match(parseMfccOptions(), { numCeps: 13, cepstralLifter: 22, numMelBins: 23 })
  for (const [key, field] of Object.entries(fbankOptionsSchema.shape)) {
    tt.ok((field as { description?: string }).description, `${key} has a description`)
  }
  const bad = (fn: () => unknown, option: string, value: unknown, re: RegExp): void => {
    let err: unknown
    try {
      fn()
    } catch (e) {
      err = e
    }
    tt.ok(err instanceof FeatureOptionsError, `${option}=${String(value)} rejected with FeatureOptionsError`)
    const e = err as FeatureOptionsError
    tt.same([e.option, e.value], [option, value], `error names ${option} and its value`)
    tt.match(e.message, re, e.message)
  }
  bad(() => parseFbankOptions({ frameShift: -3 }), 'frameShift', -3, /frameShift=-3/)
  bad(() => parseFbankOptions({ windowType: 'kaiser' }), 'windowType', 'kaiser', /windowType="kaiser"/)
  bad(() => parseFbankOptions({ numMelBins: 2.5 }), 'numMelBins', 2.5, /numMelBins=2.5/)
  bad(() => parseFbankOptions({ sampleFrequency: 8000, highFreq: 5000 }), 'highFreq', 5000, /Nyquist/)
  bad(() => parseFbankOptions({ frameLength: 0.1 }), 'frameLength', 0.1, /window/)
  bad(() => parseMfccOptions({ numCeps: 30 }), 'numCeps', 30, /numMelBins/)
  bad(
    () => parseFbankOptions({ preemphasisCoefficient: 1.5 }),
    'preemphasisCoefficient',
    1.5,
    /preemphasisCoefficient=1.5/,
  )
  tt.throws(() => parseFbankOptions({ frameLenght: 20 }), /unknown option\(s\) frameLenght/)
  tt.throws(
    () => computeFbank({ sampleRate: 8000, samples: new Float32Array(800) }, d),
    /8000 Hz but sampleFrequency is 16000/,
  )
})

t.test('mfcc C0 relates to the fbank; htkCompat moves it last', async (tt) => {
  const fo = parseFbankOptions({ sampleFrequency: 8000, dither: 0 })
  const mo = parseMfccOptions({ sampleFrequency: 8000, dither: 0 })
  const fb = computeFbank(george, fo)
  const mf = computeMfcc(george, mo)
  // C0 = sqrt(1/N) · Σ log mel (lifter weight 1 at k = 0)
  let s = 0
  for (let b = 0; b < 23; b++) s += fb.data[b]
  tt.ok(Math.abs(mf.data[0] - s / Math.sqrt(23)) < 1e-4, 'C0 of frame 0 = Σ log mel / √23')
  const htk = computeMfcc(george, parseMfccOptions({ sampleFrequency: 8000, dither: 0, htkCompat: true }))
  tt.ok(Math.abs(htk.data[12] - mf.data[0] * Math.SQRT2) < 1e-4, 'htkCompat: C0·√2 last')
  tt.equal(htk.data[0], mf.data[1], 'htkCompat: C1 first')
})
