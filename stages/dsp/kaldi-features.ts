import { KtpError } from '../../schemas/errors.js'
/**
 * Kaldi-compatible filter-bank and MFCC features (compute-fbank-feats / compute-mfcc-feats), checked
 * against `torchaudio.compliance.kaldi.fbank` / `.mfcc` to max |Δ| ≤ 1e-3 (test/kaldi-features.test.ts).
 *
 * Per frame, in Kaldi's order: extract (reflecting at the edges when snipEdges is false) → dither →
 * remove DC → raw log energy (rawEnergy) → pre-emphasis → window → zero-pad → windowed log energy
 * (!rawEnergy) → real FFT → power/magnitude → triangular mel bins → log(max(x, FLT_EPSILON)) →
 * [MFCC: DCT, lifter, C0 := energy if useEnergy, HTK reordering].
 *
 * Arithmetic is float64 throughout (Kaldi and torchaudio use float32; the difference is ~1e-6 in the
 * log domain). Everything that depends only on the options — window, sparse mel weights, DCT, lifter,
 * the FFT object and scratch buffers — is built once per options object (WeakMap cache), so the
 * per-frame path allocates nothing; each call allocates only its output.
 *
 * Not implemented: VTLN warping (vtln-warp/low/high), subtract-mean, min-duration (do CMVN in the
 * cmvn stage). Dither is deterministic: Kaldi draws from an unseeded RNG, we draw Gaussian noise from
 * mulberry32 + Box–Muller seeded by the `seed` option (override per utterance with `seedFor`).
 */
import FFT from 'fft.js'
import { z } from 'zod'

/** std::numeric_limits<float>::epsilon(), Kaldi's floor inside every log. */
export const FLT_EPSILON = 1.1920928955078125e-7

const frameShape = {
  // bounded so that a typo (1e9) fails at once instead of resampling into gigabytes
  sampleFrequency: z
    .number()
    .positive()
    .max(768_000, 'expected at most 768000 Hz')
    .default(16000)
    .describe('Waveform sample frequency in Hz; must match the audio'),
  frameLength: z.number().positive().default(25).describe('Frame length in milliseconds'),
  frameShift: z.number().positive().default(10).describe('Frame shift in milliseconds'),
  preemphasisCoefficient: z
    .number()
    .min(0)
    .max(1)
    .default(0.97)
    .describe('Pre-emphasis coefficient: x[i] -= c·x[i-1] within each frame'),
  windowType: z
    .enum(['povey', 'hamming', 'hanning', 'rectangular', 'blackman'])
    .default('povey')
    .describe('Window function (povey = Hann^0.85, Kaldi default)'),
  blackmanCoeff: z.number().default(0.42).describe('Constant coefficient of the generalised Blackman window'),
  removeDcOffset: z.boolean().default(true).describe("Subtract each frame's mean before further processing"),
  dither: z
    .number()
    .min(0)
    .default(1)
    .describe('Gaussian dither standard deviation, in int16 sample units (0 = exact, no dither)'),
  seed: z
    .number()
    .int()
    .min(0)
    .max(0xffffffff)
    .default(0)
    .describe('Seed of the dither noise (uint32); same seed and input give the same features'),
  roundToPowerOfTwo: z.boolean().default(true).describe('Zero-pad each frame to a power of two before the FFT'),
  snipEdges: z
    .boolean()
    .default(true)
    .describe(
      'Only output frames that fit wholly in the signal; if false, reflect at the edges and output round(n / shift) frames',
    ),
  numMelBins: z.number().int().min(3).default(23).describe('Number of triangular mel-frequency bins'),
  lowFreq: z.number().min(0).default(20).describe('Low cut-off of the mel bins in Hz'),
  highFreq: z
    .number()
    .default(0)
    .describe('High cut-off of the mel bins in Hz; ≤ 0 means an offset from the Nyquist frequency'),
  useEnergy: z
    .boolean()
    .default(false)
    .describe('Add the log frame energy as a feature (fbank: extra first column; mfcc: replaces C0)'),
  energyFloor: z
    .number()
    .min(0)
    .default(0)
    .describe('Floor on the frame energy (absolute, not log); 0 = no floor beyond FLT_EPSILON'),
  rawEnergy: z
    .boolean()
    .default(true)
    .describe('Compute the energy before pre-emphasis and windowing (after DC removal)'),
  htkCompat: z
    .boolean()
    .default(false)
    .describe('Put the energy (or C0) last, as HTK does (not sufficient alone for HTK-identical features)'),
}

const fbankShape = {
  ...frameShape,
  usePower: z.boolean().default(true).describe('Use the power spectrum (true) or the magnitude (false)'),
  useLogFbank: z.boolean().default(true).describe('Output log mel energies (true) or linear ones (false)'),
}

const mfccShape = {
  ...frameShape,
  numCeps: z.number().int().min(1).default(13).describe('Number of cepstra, including C0'),
  cepstralLifter: z.number().min(0).default(22).describe('Cepstral liftering constant (0 = none)'),
}

/** Options that need more than one field to check; the issue's path names the option at fault. */
function checkGeometry(o: z.infer<z.ZodObject<typeof frameShape>> & { numCeps?: number }, ctx: z.RefinementCtx): void {
  const win = windowSamples(o.sampleFrequency, o.frameLength)
  const shift = windowSamples(o.sampleFrequency, o.frameShift)
  if (win < 2)
    ctx.addIssue({
      code: 'custom',
      path: ['frameLength'],
      message: `gives a ${win}-sample window at ${o.sampleFrequency} Hz; need at least 2`,
    })
  if (shift < 1)
    ctx.addIssue({
      code: 'custom',
      path: ['frameShift'],
      message: `gives a ${shift}-sample shift at ${o.sampleFrequency} Hz; need at least 1`,
    })
  const padded = o.roundToPowerOfTwo ? nextPow2(win) : win
  if (win >= 2 && padded % 2 !== 0)
    ctx.addIssue({
      code: 'custom',
      path: ['frameLength'],
      message: `gives an odd ${win}-sample window; set roundToPowerOfTwo or change frameLength`,
    })
  const nyquist = o.sampleFrequency / 2
  const high = o.highFreq <= 0 ? o.highFreq + nyquist : o.highFreq
  if (!(o.lowFreq < nyquist))
    ctx.addIssue({ code: 'custom', path: ['lowFreq'], message: `must be below the Nyquist frequency ${nyquist}` })
  if (!(high > 0 && high <= nyquist && o.lowFreq < high)) {
    ctx.addIssue({
      code: 'custom',
      path: ['highFreq'],
      message: `gives a high cut-off of ${high} Hz; need lowFreq (${o.lowFreq}) < high ≤ Nyquist (${nyquist})`,
    })
  }
  if (o.numCeps !== undefined && o.numCeps > o.numMelBins) {
    ctx.addIssue({ code: 'custom', path: ['numCeps'], message: `must not exceed numMelBins (${o.numMelBins})` })
  }
}

export const fbankOptionsSchema = z
  .object(fbankShape)
  .strict()
  .superRefine(checkGeometry)
  .describe('Kaldi compute-fbank-feats options')
export const mfccOptionsSchema = z
  .object(mfccShape)
  .strict()
  .superRefine(checkGeometry)
  .describe('Kaldi compute-mfcc-feats options')
export type FbankOptions = z.output<typeof fbankOptionsSchema>
export type MfccOptions = z.output<typeof mfccOptionsSchema>
export type FbankOptionsInput = z.input<typeof fbankOptionsSchema>
export type MfccOptionsInput = z.input<typeof mfccOptionsSchema>

/** A bad option: `option` and `value` name what to fix. */
export class FeatureOptionsError extends Error {
  readonly code = 'bad-option'
  constructor(
    readonly option: string,
    readonly value: unknown,
    message: string,
  ) {
    super(message)
    this.name = 'FeatureOptionsError'
  }
}

function parseWith<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input ?? {})
  // Frozen: the precomputed plan is cached per options object, so it must not change under it.
  if (r.success) return Object.freeze(r.data) as z.output<S>
  const rec = (input ?? {}) as Record<string, unknown>
  // One message per option: a range error and the geometry check can both fire for one bad value.
  const seen = new Set<string>()
  const issues = r.error.issues.filter((iss) => {
    const k = iss.path.map(String).join('.')
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
  const parts = issues.map((iss) => {
    if (iss.code === 'unrecognized_keys') return `unknown option(s) ${iss.keys.join(', ')}`
    const key = iss.path.map(String).join('.')
    return `${key}=${JSON.stringify(rec[key])}: ${iss.message}`
  })
  const first = issues[0]
  const option = first.code === 'unrecognized_keys' ? first.keys.join(',') : first.path.map(String).join('.')
  throw new FeatureOptionsError(option, rec[option], `invalid feature option ${parts.join('; ')}`)
}

/** Validate and fill defaults; throws FeatureOptionsError naming the option and the bad value. */
export const parseFbankOptions = (input?: FbankOptionsInput | Record<string, unknown>): FbankOptions =>
  parseWith(fbankOptionsSchema, input)
export const parseMfccOptions = (input?: MfccOptionsInput | Record<string, unknown>): MfccOptions =>
  parseWith(mfccOptionsSchema, input)

/** Frame-major features: row f is data.subarray(f * dim, (f + 1) * dim). */
export interface Features {
  numFrames: number
  dim: number
  data: Float32Array
}

/** Audio as samples, or decoded audio whose sample rate is checked against sampleFrequency. */
export type Wave = Float32Array | { sampleRate: number; samples: Float32Array }

// ---------------------------------------------------------------- helpers

function windowSamples(sampleFrequency: number, ms: number): number {
  return Math.trunc(sampleFrequency * 0.001 * ms) // Kaldi's FrameExtractionOptions::WindowSize
}

function nextPow2(n: number): number {
  let p = 1
  while (p < n) p *= 2
  return p
}

const melScale = (f: number): number => 1127 * Math.log(1 + f / 700)

/** Kaldi's FeatureWindowFunction (a = 2π/(N−1)). */
function makeWindow(type: FbankOptions['windowType'], n: number, blackmanCoeff: number): Float64Array {
  const w = new Float64Array(n)
  const a = (2 * Math.PI) / (n - 1)
  for (let i = 0; i < n; i++) {
    switch (type) {
      case 'hanning':
        w[i] = 0.5 - 0.5 * Math.cos(a * i)
        break
      case 'povey':
        w[i] = (0.5 - 0.5 * Math.cos(a * i)) ** 0.85
        break
      case 'hamming':
        w[i] = 0.54 - 0.46 * Math.cos(a * i)
        break
      case 'rectangular':
        w[i] = 1
        break
      case 'blackman':
        w[i] = blackmanCoeff - 0.5 * Math.cos(a * i) + (0.5 - blackmanCoeff) * Math.cos(2 * a * i)
        break
    }
  }
  return w
}

/**
 * Real DFT of a non-power-of-two length (roundToPowerOfTwo: false) by Bluestein's chirp-z trick:
 * the DFT becomes a circular convolution of power-of-two size, done with fft.js. Only bins 0..n/2
 * are produced, interleaved re/im like fft.js' output.
 */
class BluesteinDft {
  private readonly fft: FFT
  private readonly cr: Float64Array
  private readonly ci: Float64Array
  private readonly bHat: Float64Array
  private readonly a: Float64Array
  private readonly aHat: Float64Array
  private readonly conv: Float64Array

  constructor(private readonly n: number) {
    const m = nextPow2(2 * n - 1)
    this.fft = new FFT(m)
    this.cr = new Float64Array(n)
    this.ci = new Float64Array(n)
    const b = new Float64Array(2 * m)
    for (let k = 0; k < n; k++) {
      // chirp c[k] = exp(-iπk²/n); reduce k² mod 2n first so the angle stays exact for large k
      const ang = (Math.PI * ((k * k) % (2 * n))) / n
      this.cr[k] = Math.cos(ang)
      this.ci[k] = -Math.sin(ang)
      b[2 * k] = this.cr[k]
      b[2 * k + 1] = -this.ci[k] // conj(c)
      if (k > 0) {
        b[2 * (m - k)] = this.cr[k]
        b[2 * (m - k) + 1] = -this.ci[k]
      }
    }
    this.bHat = new Float64Array(2 * m)
    this.fft.transform(this.bHat, b)
    this.a = new Float64Array(2 * m)
    this.aHat = new Float64Array(2 * m)
    this.conv = new Float64Array(2 * m)
  }

  realTransform(out: Float64Array, x: Float64Array): void {
    const { n, a, aHat, bHat, conv, cr, ci } = this
    a.fill(0)
    for (let k = 0; k < n; k++) {
      a[2 * k] = x[k] * cr[k]
      a[2 * k + 1] = x[k] * ci[k]
    }
    this.fft.transform(aHat, a)
    for (let i = 0; i < aHat.length; i += 2) {
      const re = aHat[i] * bHat[i] - aHat[i + 1] * bHat[i + 1]
      const im = aHat[i] * bHat[i + 1] + aHat[i + 1] * bHat[i]
      a[i] = re
      a[i + 1] = im
    }
    this.fft.inverseTransform(conv, a)
    for (let k = 0; k <= n >> 1; k++) {
      out[2 * k] = conv[2 * k] * cr[k] - conv[2 * k + 1] * ci[k]
      out[2 * k + 1] = conv[2 * k] * ci[k] + conv[2 * k + 1] * cr[k]
    }
  }
}

// ---------------------------------------------------------------- the precomputed plan

interface Plan {
  win: number
  shift: number
  padded: number
  window: Float64Array
  dft: { realTransform(out: Float64Array, x: Float64Array): void }
  frame: Float64Array // padded frame (input of the FFT)
  spectrum: Float64Array // interleaved complex FFT output, 2·padded
  power: Float64Array // padded/2 bins (Kaldi drops the Nyquist bin from the mel banks)
  powerEnd: number // one past the highest FFT bin any mel triangle uses
  melFirst: Int32Array // first FFT bin with a non-zero weight, per mel bin
  melOffset: Int32Array // start of each mel bin's weights in melWeights (numMelBins + 1 entries)
  melWeights: Float64Array
  mel: Float64Array // scratch: one frame's mel energies
}

/** Kaldi's MelBanks, kept sparse: each triangle as (first bin, weights). */
function makeMelBanks(o: FbankOptions, padded: number): Pick<Plan, 'melFirst' | 'melOffset' | 'melWeights'> {
  const nyquist = 0.5 * o.sampleFrequency
  const high = o.highFreq <= 0 ? o.highFreq + nyquist : o.highFreq
  const binWidth = o.sampleFrequency / padded
  const melLow = melScale(o.lowFreq)
  const delta = (melScale(high) - melLow) / (o.numMelBins + 1)
  const half = padded / 2
  const melFirst = new Int32Array(o.numMelBins)
  const melOffset = new Int32Array(o.numMelBins + 1)
  const weights: number[] = []
  for (let b = 0; b < o.numMelBins; b++) {
    const left = melLow + b * delta
    const center = melLow + (b + 1) * delta
    const right = melLow + (b + 2) * delta
    let first = -1
    for (let i = 0; i < half; i++) {
      const mel = melScale(binWidth * i)
      const w = Math.max(0, Math.min((mel - left) / (center - left), (right - mel) / (right - center)))
      if (w > 0) {
        if (first < 0) first = i
        // zero weights inside the triangle cannot occur, so the run is contiguous
        weights.push(w)
      }
    }
    if (first < 0)
      // Kaldi's MelBanks refuses too ("You may have set --num-mel-bins too large"): an empty bin
      // is a constant log(floor) feature, not information
      throw new KtpError(
        'empty-mel-bin',
        `--num-mel-bins ${o.numMelBins}: mel bin ${b + 1} holds no FFT bin at ${o.sampleFrequency} Hz (${padded}-point FFT, ${o.lowFreq}–${high} Hz); use fewer mel bins`,
      )
    melFirst[b] = first
    melOffset[b + 1] = weights.length
  }
  return { melFirst, melOffset, melWeights: Float64Array.from(weights) }
}

const plans = new WeakMap<object, Plan>()

/** Check options that only the filter bank can judge (an empty mel bin), before any audio is read. */
export function checkMelBanks(o: FbankOptions | MfccOptions): void {
  planFor(o as FbankOptions)
}

function planFor(o: FbankOptions): Plan {
  let p = plans.get(o)
  if (p) return p
  const win = windowSamples(o.sampleFrequency, o.frameLength)
  const shift = windowSamples(o.sampleFrequency, o.frameShift)
  const padded = o.roundToPowerOfTwo ? nextPow2(win) : win
  const pow2 = (padded & (padded - 1)) === 0
  const dft = pow2 ? new FFT(padded) : new BluesteinDft(padded)
  const banks = makeMelBanks(o, padded)
  let powerEnd = 0
  for (let b = 0; b < o.numMelBins; b++) {
    powerEnd = Math.max(powerEnd, banks.melFirst[b] + banks.melOffset[b + 1] - banks.melOffset[b])
  }
  p = {
    win,
    shift,
    padded,
    powerEnd,
    window: makeWindow(o.windowType, win, o.blackmanCoeff),
    dft: dft as Plan['dft'],
    frame: new Float64Array(padded), // the zero padding [win, padded) is never written
    spectrum: new Float64Array(2 * padded),
    power: new Float64Array(padded / 2),
    mel: new Float64Array(o.numMelBins),
    ...banks,
  }
  plans.set(o, p)
  return p
}

/** Number of frames Kaldi outputs for n samples (NumFrames in feature-window.cc). */
export function numFrames(
  n: number,
  opts: { sampleFrequency: number; frameLength: number; frameShift: number; snipEdges: boolean },
): number {
  const win = windowSamples(opts.sampleFrequency, opts.frameLength)
  const shift = windowSamples(opts.sampleFrequency, opts.frameShift)
  if (opts.snipEdges) return n < win ? 0 : 1 + Math.floor((n - win) / shift)
  return Math.floor((n + Math.floor(shift / 2)) / shift)
}

/** Deterministic per-utterance dither seed: FNV-1a of the utterance id mixed with a base seed. */
export function seedFor(baseSeed: number, uttId: string): number {
  let h = (0x811c9dc5 ^ baseSeed) >>> 0
  for (let i = 0; i < uttId.length; i++) h = Math.imul(h ^ uttId.charCodeAt(i), 0x01000193) >>> 0
  return h
}

function samplesOf(wave: Wave, o: FbankOptions): Float32Array {
  if (wave instanceof Float32Array) return wave
  if (wave.sampleRate !== o.sampleFrequency) {
    throw new FeatureOptionsError(
      'sampleFrequency',
      o.sampleFrequency,
      `audio is ${wave.sampleRate} Hz but sampleFrequency is ${o.sampleFrequency}; resample or set sampleFrequency`,
    )
  }
  return wave.samples
}

/**
 * The shared front half: fills plan.mel with (log) mel energies of every frame in turn and calls
 * `emit(frameIndex, logEnergy)`. Written as one loop so nothing is allocated per frame.
 */
function forEachFrame(
  x: Float32Array,
  o: FbankOptions,
  seed: number,
  emit: (f: number, logEnergy: number) => void,
): number {
  const p = planFor(o)
  const { win, shift, window, frame, spectrum, power, mel, melFirst, melOffset, melWeights } = p
  const n = x.length
  const frames = numFrames(n, o)
  const logFloor = o.energyFloor > 0 ? Math.log(o.energyFloor) : -Infinity
  // mulberry32 state and the Box–Muller spare live in locals: no allocation, reproducible per call.
  let rng = seed >>> 0
  let spare = 0
  let haveSpare = false
  const uniform = (): number => {
    rng = (rng + 0x6d2b79f5) | 0
    let t = rng
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const gauss = (): number => {
    if (haveSpare) {
      haveSpare = false
      return spare
    }
    const r = Math.sqrt(-2 * Math.log(1 - uniform())) // 1 - u ∈ (0, 1]: never log(0)
    const th = 2 * Math.PI * uniform()
    spare = r * Math.sin(th)
    haveSpare = true
    return r * Math.cos(th)
  }

  // Options hoisted into locals: the loop below runs ~10⁵ times per minute of audio.
  const { snipEdges, dither, removeDcOffset, rawEnergy, usePower, useLogFbank } = o
  const c = o.preemphasisCoefficient
  const numBins = mel.length
  const powerEnd = p.powerEnd
  const edgeOffset = Math.floor(shift / 2) - Math.floor(win / 2)
  for (let f = 0; f < frames; f++) {
    // 1. extract (Kaldi's FirstSampleOfFrame), reflecting "2 1 0 | 0 1 2" outside the signal;
    //    the sum for DC removal is taken on the way
    const start = snipEdges ? f * shift : f * shift + edgeOffset
    let sum = 0
    if (start >= 0 && start + win <= n) {
      for (let i = 0; i < win; i++) {
        const v = x[start + i]
        frame[i] = v
        sum += v
      }
    } else {
      const period = 2 * n
      for (let i = 0; i < win; i++) {
        let s = (start + i) % period
        if (s < 0) s += period
        const v = x[s < n ? s : period - 1 - s]
        frame[i] = v
        sum += v
      }
    }
    // 2. dither (before DC removal, as Kaldi)
    if (dither !== 0) {
      sum = 0
      for (let i = 0; i < win; i++) {
        const v = frame[i] + dither * gauss()
        frame[i] = v
        sum += v
      }
    }
    // 3+4. DC removal, raw energy, pre-emphasis and window in one backward pass: walking down,
    //    frame[i-1] is still the un-emphasised sample when frame[i] needs it. frame[win..padded)
    //    stays zero from the plan.
    const mean = removeDcOffset ? sum / win : 0
    let energy = 0
    let cur = frame[win - 1] - mean
    for (let i = win - 1; i > 0; i--) {
      const prev = frame[i - 1] - mean
      energy += cur * cur
      frame[i] = (cur - c * prev) * window[i]
      cur = prev
    }
    energy += cur * cur
    frame[0] = (cur - c * cur) * window[0]
    if (!rawEnergy) energy = 0
    if (!rawEnergy) for (let i = 0; i < win; i++) energy += frame[i] * frame[i]
    let logEnergy = Math.log(Math.max(energy, FLT_EPSILON))
    if (logEnergy < logFloor) logEnergy = logFloor
    // 5. spectrum, only up to the last bin a mel triangle touches
    p.dft.realTransform(spectrum, frame)
    for (let k = 0; k < powerEnd; k++) {
      const re = spectrum[2 * k]
      const im = spectrum[2 * k + 1]
      power[k] = usePower ? re * re + im * im : Math.sqrt(re * re + im * im)
    }
    // 6. mel bins (sparse dot products) and log
    for (let b = 0; b < numBins; b++) {
      let acc = 0
      const base = melFirst[b] - melOffset[b]
      const end = melOffset[b + 1]
      for (let j = melOffset[b]; j < end; j++) acc += melWeights[j] * power[base + j]
      mel[b] = useLogFbank ? Math.log(Math.max(acc, FLT_EPSILON)) : acc
    }
    emit(f, logEnergy)
  }
  return frames
}

/** Kaldi fbank features of one utterance. `seed` overrides opts.seed (see `seedFor`). */
export function computeFbank(wave: Wave, opts: FbankOptions, seed: number = opts.seed): Features {
  const x = samplesOf(wave, opts)
  const nb = opts.numMelBins
  const dim = nb + (opts.useEnergy ? 1 : 0)
  const energyCol = opts.useEnergy ? (opts.htkCompat ? nb : 0) : -1
  const melCol = energyCol === 0 ? 1 : 0
  const data = new Float32Array(numFrames(x.length, opts) * dim)
  const mel = planFor(opts).mel
  const frames = forEachFrame(x, opts, seed, (f, logEnergy) => {
    const row = f * dim
    for (let b = 0; b < nb; b++) data[row + melCol + b] = mel[b]
    if (energyCol >= 0) data[row + energyCol] = logEnergy
  })
  return { numFrames: frames, dim, data }
}

interface CepstralPlan {
  dct: Float64Array
  lifter: Float64Array
  fbankOpts: FbankOptions
}
const cepstralPlans = new WeakMap<object, CepstralPlan>()

function cepstralPlanFor(o: MfccOptions): CepstralPlan {
  let p = cepstralPlans.get(o)
  if (p) return p
  const nb = o.numMelBins
  // Kaldi's ComputeDctMatrix: orthonormal DCT-II rows, row 0 = sqrt(1/N)
  const dct = new Float64Array(o.numCeps * nb)
  for (let k = 0; k < o.numCeps; k++) {
    const scale = k === 0 ? Math.sqrt(1 / nb) : Math.sqrt(2 / nb)
    for (let j = 0; j < nb; j++) dct[k * nb + j] = scale * Math.cos((Math.PI / nb) * (j + 0.5) * k)
  }
  const lifter = new Float64Array(o.numCeps)
  for (let k = 0; k < o.numCeps; k++) {
    lifter[k] = o.cepstralLifter !== 0 ? 1 + 0.5 * o.cepstralLifter * Math.sin((Math.PI * k) / o.cepstralLifter) : 1
  }
  // MFCCs always start from the log power mel spectrum
  const { numCeps: _n, cepstralLifter: _l, ...frameOpts } = o
  p = { dct, lifter, fbankOpts: { ...frameOpts, usePower: true, useLogFbank: true } }
  cepstralPlans.set(o, p)
  return p
}

/** Kaldi MFCC features of one utterance. `seed` overrides opts.seed (see `seedFor`). */
export function computeMfcc(wave: Wave, opts: MfccOptions, seed: number = opts.seed): Features {
  const { dct, lifter, fbankOpts } = cepstralPlanFor(opts)
  const x = samplesOf(wave, fbankOpts)
  const nb = opts.numMelBins
  const dim = opts.numCeps
  const data = new Float32Array(numFrames(x.length, opts) * dim)
  const mel = planFor(fbankOpts).mel
  const frames = forEachFrame(x, fbankOpts, seed, (f, logEnergy) => {
    const row = f * dim
    // With htkCompat, C0 (or energy) moves last: C1..C(n-1), C0; Kaldi scales C0 by √2 then.
    const shiftCols = opts.htkCompat ? 1 : 0
    for (let k = 0; k < dim; k++) {
      let acc = 0
      for (let j = 0; j < nb; j++) acc += dct[k * nb + j] * mel[j]
      let v = acc * lifter[k]
      if (k === 0) {
        if (opts.useEnergy) v = logEnergy
        else if (opts.htkCompat) v *= Math.SQRT2
      }
      data[row + (k === 0 ? (shiftCols ? dim - 1 : 0) : k - shiftCols)] = v
    }
  })
  return { numFrames: frames, dim, data }
}
