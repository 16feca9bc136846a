// Decoding of RIFF/WAVE and NIST SPHERE from bytes written here, every AudioError code, a fast-check
// property (no input makes decodeAudio throw anything but AudioError), and resample's frequency response.
import t from 'tap'
import fc from 'fast-check'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { AudioError, decodeAudio, resample, type DecodeOptions } from '../stages/audio/decode.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

// ---------------------------------------------------------------- byte builders

function chunk(id: string, body: Uint8Array, sizeOverride?: number): Uint8Array {
  const pad = body.length & 1
  const out = new Uint8Array(8 + body.length + pad)
  out.set(Buffer.from(id, 'latin1'))
  new DataView(out.buffer).setUint32(4, sizeOverride ?? body.length, true)
  out.set(body, 8)
  return out
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}

interface WavSpec {
  tag?: number
  channels?: number
  rate?: number
  bits?: number
  extensible?: number
  blockAlign?: number
  data: Uint8Array
  dataSize?: number
  before?: Uint8Array[]
  noFmt?: boolean
  noData?: boolean
}

function wav(s: WavSpec): Uint8Array {
  const channels = s.channels ?? 1
  const bits = s.bits ?? 16
  const fmt = new Uint8Array(s.extensible !== undefined ? 40 : 16)
  const dv = new DataView(fmt.buffer)
  dv.setUint16(0, s.extensible !== undefined ? 0xfffe : (s.tag ?? 1), true)
  dv.setUint16(2, channels, true)
  dv.setUint32(4, s.rate ?? 16000, true)
  dv.setUint32(8, (s.rate ?? 16000) * channels * (bits / 8), true)
  dv.setUint16(12, s.blockAlign ?? channels * (bits / 8), true)
  dv.setUint16(14, bits, true)
  if (s.extensible !== undefined) {
    dv.setUint16(16, 22, true) // cbSize
    dv.setUint16(18, bits, true) // valid bits
    dv.setUint16(24, s.extensible, true) // SubFormat GUID starts with the format tag
    fmt.set([0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71], 26)
  }
  const body = concat(
    Buffer.from('WAVE', 'latin1'),
    ...(s.before ?? []),
    s.noFmt ? new Uint8Array(0) : chunk('fmt ', fmt),
    s.noData ? new Uint8Array(0) : chunk('data', s.data, s.dataSize),
  )
  const head = new Uint8Array(8)
  head.set(Buffer.from('RIFF', 'latin1'))
  new DataView(head.buffer).setUint32(4, body.length, true)
  return concat(head, body)
}

function pcm16(values: number[], littleEndian = true): Uint8Array {
  const b = new Uint8Array(values.length * 2)
  const dv = new DataView(b.buffer)
  values.forEach((v, i) => {
    dv.setInt16(i * 2, v, littleEndian)
  })
  return b
}

function sphere(fields: string[], data: Uint8Array, headerSize = 1024): Uint8Array {
  const text = `NIST_1A\n${String(headerSize).padStart(7)}\n${fields.join('\n')}\nend_head\n`
  const head = new Uint8Array(headerSize).fill(0x20)
  head.set(Buffer.from(text, 'latin1'))
  return concat(head, data)
}

const sph16 = (n: number, order: string, extra: string[] = []): string[] => [
  'channel_count -i 1',
  `sample_count -i ${n}`,
  'sample_rate -i 16000',
  'sample_n_bytes -i 2',
  `sample_byte_format -s2 ${order}`,
  ...extra,
]

function decodeCode(bytes: Uint8Array, opts: DecodeOptions = {}): string {
  try {
    decodeAudio(bytes, { name: 'f.wav', ...opts })
  } catch (e) {
    if (e instanceof AudioError) return e.code
    throw e
  }
  return 'ok'
}

// ---------------------------------------------------------------- formats

t.test('RIFF PCM 16/24/32-bit and float 32/64, Kaldi scale', async (tt) => {
  const v16 = [0, 1, -1, 32767, -32768]
  const a = decodeAudio(wav({ data: pcm16(v16), rate: 8000 }))
  tt.equal(a.sampleRate, 8000)
  tt.same(Array.from(a.samples), v16, '16-bit: int values as floats')

  const v24 = [0, 256, -256, 8388607, -8388608]
  const b24 = new Uint8Array(v24.length * 3)
  v24.forEach((v, i) => {
    b24[3 * i] = v & 0xff
    b24[3 * i + 1] = (v >> 8) & 0xff
    b24[3 * i + 2] = (v >> 16) & 0xff
  })
  tt.same(
    Array.from(decodeAudio(wav({ bits: 24, data: b24 })).samples),
    [0, 1, -1, 8388607 / 256, -32768],
    '24-bit / 256',
  )

  const v32 = [65536, -65536, 2147483647, -2147483648]
  const b32 = new Uint8Array(16)
  v32.forEach((v, i) => {
    new DataView(b32.buffer).setInt32(4 * i, v, true)
  })
  tt.same(
    Array.from(decodeAudio(wav({ bits: 32, data: b32 })).samples),
    [1, -1, Math.fround(2147483647 / 65536), -32768],
    '32-bit / 65536',
  )

  const f = new Float32Array([0.5, -1, 0.25, 0])
  tt.same(
    Array.from(decodeAudio(wav({ tag: 3, bits: 32, data: new Uint8Array(f.buffer) })).samples),
    [16384, -32768, 8192, 0],
    'float32 × 32768',
  )
  const d = new Float64Array([0.5, -0.125])
  tt.same(
    Array.from(decodeAudio(wav({ tag: 3, bits: 64, data: new Uint8Array(d.buffer) })).samples),
    [16384, -4096],
    'float64 × 32768',
  )
})

t.test('WAVE_FORMAT_EXTENSIBLE (PCM and float sub-formats)', async (tt) => {
  tt.same(Array.from(decodeAudio(wav({ extensible: 1, data: pcm16([5, -7]) })).samples), [5, -7])
  const f = new Float32Array([0.5, -0.5])
  tt.same(
    Array.from(decodeAudio(wav({ extensible: 3, bits: 32, data: new Uint8Array(f.buffer) })).samples),
    [16384, -16384],
  )
  tt.equal(
    decodeCode(wav({ extensible: 7, bits: 8, data: new Uint8Array(4) })),
    'unsupported-encoding',
    'extensible µ-law refused',
  )
})

t.test('stereo: choose a channel', async (tt) => {
  const st = wav({ channels: 2, data: pcm16([1, -1, 2, -2, 3, -3]) })
  tt.same(Array.from(decodeAudio(st, { channel: 0 }).samples), [1, 2, 3], 'left')
  tt.same(Array.from(decodeAudio(st, { channel: 1 }).samples), [-1, -2, -3], 'right')
  tt.equal(decodeCode(st), 'needs-channel')
  tt.equal(decodeCode(st, { channel: 2 }), 'bad-channel')
  tt.same(Array.from(decodeAudio(wav({ data: pcm16([9]) }), { channel: 0 }).samples), [9], 'channel 0 of mono is fine')
})

t.test('chunk walking: LIST before data, odd sizes with pad byte, data before fmt', async (tt) => {
  const list = chunk('LIST', Buffer.from('INFOISFT\x05\x00\x00\x00ktp!\x00', 'latin1'))
  const odd = chunk('junk', new Uint8Array([1, 2, 3])) // 3 bytes + pad
  tt.equal(odd.length, 12, 'odd chunk is padded')
  tt.same(Array.from(decodeAudio(wav({ before: [list, odd], data: pcm16([4, 5, 6]) })).samples), [4, 5, 6])
  // data first, fmt after
  const fmtFirst = wav({ data: pcm16([7, 8]) })
  const dataChunk = chunk('data', pcm16([7, 8]))
  const fmtChunk = fmtFirst.subarray(12, 12 + 24)
  const swapped = concat(fmtFirst.subarray(0, 12), dataChunk, fmtChunk)
  tt.same(Array.from(decodeAudio(swapped).samples), [7, 8], 'data chunk before fmt chunk')
  // trailing chunk after data (and a ragged tail) is ignored once fmt and data are known
  const tail = concat(wav({ data: pcm16([1]) }), Buffer.from('id3 ', 'latin1'))
  tt.same(Array.from(decodeAudio(tail).samples), [1])
})

t.test('NIST SPHERE, both byte orders', async (tt) => {
  const v = [1, -2, 300, -32768, 32767]
  const le = decodeAudio(sphere(sph16(5, '01'), pcm16(v, true)))
  tt.same([le.sampleRate, ...le.samples], [16000, ...v], 'sample_byte_format 01 (little endian)')
  const be = decodeAudio(sphere(sph16(5, '10'), pcm16(v, false)))
  tt.same(Array.from(be.samples), v, 'sample_byte_format 10 (big endian)')
  const noCount = sphere(
    sph16(5, '01').filter((l) => !l.startsWith('sample_count')),
    pcm16(v),
  )
  tt.same(Array.from(decodeAudio(noCount).samples), v, 'without sample_count the data runs to EOF')
  const stereo = sphere(
    [
      'channel_count -i 2',
      'sample_count -i 2',
      'sample_rate -i 8000',
      'sample_n_bytes -i 2',
      'sample_byte_format -s2 01',
    ],
    pcm16([1, 2, 3, 4]),
  )
  tt.same(Array.from(decodeAudio(stereo, { channel: 1 }).samples), [2, 4], 'SPHERE channel 1')
  tt.equal(decodeCode(stereo), 'needs-channel')
})

t.test('every error code, with the file named', async (tt) => {
  const ok = wav({ data: pcm16([1, 2]) })
  const cases: Array<[string, Uint8Array, DecodeOptions?]> = [
    ['unknown-format', Buffer.from('OggS\0\0\0\0\0\0\0\0\0\0\0\0')],
    ['unknown-format', new Uint8Array(0)],
    ['unknown-format', concat(Buffer.from('RIFF\0\0\0\0AVI ', 'latin1'))],
    ['truncated-header', ok.subarray(0, 10)],
    ['truncated-header', concat(ok.subarray(0, 12), Buffer.from('fmt ', 'latin1'))],
    ['truncated-header', ok.subarray(0, 12 + 8 + 10)],
    ['truncated-header', sphere(sph16(1, '01'), new Uint8Array(0)).subarray(0, 600)],
    ['truncated-header', Buffer.from('NIST_1A\n   1024', 'latin1')],
    ['bad-header', wav({ channels: 0, data: pcm16([1]) })],
    ['bad-header', wav({ rate: 0, data: pcm16([1]) })],
    ['bad-header', wav({ blockAlign: 3, data: pcm16([1]) })],
    [
      'bad-header',
      sphere(
        sph16(1, '01').filter((l) => !l.startsWith('sample_byte_format')),
        pcm16([1]),
      ),
    ],
    [
      'bad-header',
      sphere(
        sph16(1, '01').filter((l) => !l.startsWith('sample_rate')),
        pcm16([1]),
      ),
    ],
    ['missing-chunk', wav({ noFmt: true, data: pcm16([1]) })],
    ['missing-chunk', wav({ noData: true, data: pcm16([1]) })],
    ['data-beyond-eof', wav({ data: pcm16([1, 2]), dataSize: 400 })],
    ['data-beyond-eof', wav({ data: pcm16([1, 2]), dataSize: 0xffffffff })],
    ['data-beyond-eof', sphere(sph16(10, '01'), pcm16([1, 2]))],
    ['partial-frame', wav({ data: new Uint8Array(3) })],
    ['no-samples', wav({ data: new Uint8Array(0) })],
    ['no-samples', sphere(sph16(0, '01'), new Uint8Array(0))],
    ['unsupported-bits', wav({ bits: 8, data: new Uint8Array([128, 129]) })],
    ['unsupported-bits', wav({ tag: 3, bits: 16, data: new Uint8Array(4) })],
    [
      'unsupported-bits',
      sphere(['sample_rate -i 8000', 'sample_n_bytes -i 1', 'sample_byte_format -s1 1'], new Uint8Array(4)),
    ],
    ['unsupported-encoding', wav({ tag: 7, bits: 16, data: new Uint8Array(4) })],
    ['unsupported-encoding', sphere(sph16(2, '01', ['sample_coding -s4 ulaw']), new Uint8Array(4))],
    ['needs-channel', wav({ channels: 2, data: pcm16([1, 2]) })],
    ['bad-channel', wav({ data: pcm16([1, 2]) }), { channel: 1 }],
    ['bad-channel', wav({ data: pcm16([1, 2]) }), { channel: -1 }],
    ['non-finite', wav({ tag: 3, bits: 32, data: new Uint8Array(new Float32Array([0, NaN]).buffer) })],
    ['non-finite', wav({ tag: 3, bits: 64, data: new Uint8Array(new Float64Array([1e300]).buffer) })],
    ['shorten', sphere(sph16(2, '01', ['sample_coding -s26 pcm,embedded-shorten-v2.00']), new Uint8Array(4))],
  ]
  for (const [code, bytes, opts] of cases) {
    let err: unknown
    try {
      decodeAudio(bytes, { name: 'corpus/x.wav', ...opts })
    } catch (e) {
      err = e
    }
    tt.ok(err instanceof AudioError, `${code}: throws AudioError`)
    const e = err as AudioError
    tt.equal(e.code, code, `${code}: ${e.message}`)
    tt.ok(e.message.startsWith('corpus/x.wav: '), 'message names the file')
  }
  const shorten = sphere(sph16(2, '01', ['sample_coding -s26 pcm,embedded-shorten-v2.00']), new Uint8Array(4))
  tt.throws(() => decodeAudio(shorten, { name: 's.sph' }), {
    message: 's.sph: shorten-compressed SPHERE is not supported; decompress with sph2pipe',
  })
})

t.test('property: any bytes → samples or AudioError, nothing else', async (tt) => {
  const validWav = wav({ before: [chunk('LIST', new Uint8Array(5))], data: pcm16([1, -2, 3, -4, 5, -6]) })
  const validSph = sphere(sph16(6, '10'), pcm16([1, -2, 3, -4, 5, -6], false), 256)
  const check = (bytes: Uint8Array, channel?: number): boolean => {
    try {
      const r = decodeAudio(bytes, { name: 'fuzz', channel })
      return r.samples instanceof Float32Array && r.samples.length > 0 && r.sampleRate > 0
    } catch (e) {
      return e instanceof AudioError && typeof e.code === 'string' && e.message.startsWith('fuzz: ')
    }
  }
  const mutate = (base: Uint8Array) =>
    fc
      .record({
        edits: fc.array(
          fc.record({
            pos: fc.nat(base.length - 1),
            byte: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0, 0xff, 0x80, 0x7f)),
          }),
          { maxLength: 8 },
        ),
        cut: fc.option(fc.nat(base.length), { nil: undefined }),
        channel: fc.option(fc.integer({ min: -1, max: 3 }), { nil: undefined }),
      })
      .map(({ edits, cut, channel }) => {
        const b = Uint8Array.from(base)
        for (const { pos, byte } of edits) b[pos] = byte
        return { bytes: cut === undefined ? b : b.subarray(0, cut), channel }
      })
  const header = (magic: string) =>
    fc.uint8Array({ maxLength: 200 }).map((b) => concat(Buffer.from(magic, 'latin1'), b))
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (b) => check(b)),
    { numRuns: 60, seed: 1 },
  )
  fc.assert(
    fc.property(fc.oneof(header('RIFF'), header('NIST_1A\n')), (b) => check(b)),
    { numRuns: 60, seed: 2 },
  )
  fc.assert(
    fc.property(mutate(validWav), ({ bytes, channel }) => check(bytes, channel)),
    { numRuns: 90, seed: 3 },
  )
  fc.assert(
    fc.property(mutate(validSph), ({ bytes, channel }) => check(bytes, channel)),
    { numRuns: 90, seed: 4 },
  )
  tt.pass('300 runs: decodeAudio only ever returned samples or threw AudioError')
})

t.test('real files: FSDD RIFF', async (tt) => {
  const fsdd = readFileSync(join(root, 'fixtures/fsdd/recordings/0_george_0.wav'))
  const a = decodeAudio(fsdd, { name: '0_george_0.wav' })
  tt.equal(a.sampleRate, 8000)
  tt.equal(a.samples.length, (fsdd.length - 44) / 2)
  tt.equal(a.samples[0], fsdd.readInt16LE(44), 'first sample is the raw int16 value')
})

const timitDir = join(root, '../shared/data/timit-format/dr1-fvmh0')
t.test(
  'real files: TIMIT-format RIFF + SPHERE',
  { skip: existsSync(timitDir) ? false : `${timitDir} not present` },
  async (tt) => {
    const dir = timitDir
    const sph = readFileSync(join(dir, 'si836.wav'))
    const s = decodeAudio(sph, { name: 'si836.wav' })
    const head = sph.subarray(0, 1024).toString('latin1')
    const field = (k: string): number => Number(new RegExp(`${k} -i (-?\\d+)`).exec(head)![1])
    tt.same([s.sampleRate, s.samples.length], [16000, field('sample_count')], 'SPHERE rate and sample_count')
    tt.equal(Math.min(...s.samples), field('sample_min'), 'decoded minimum = header sample_min')
    tt.equal(Math.max(...s.samples), field('sample_max'), 'decoded maximum = header sample_max')
    const r = decodeAudio(readFileSync(join(dir, 'sa1.wav')), { name: 'sa1.wav' })
    tt.equal(r.sampleRate, 16000)
    tt.ok(r.samples.length > 16000, 'sa1 is more than a second long')
  },
)

// ---------------------------------------------------------------- resample

function sine(freq: number, rate: number, seconds: number): Float32Array {
  const x = new Float32Array(Math.round(rate * seconds))
  for (let i = 0; i < x.length; i++) x[i] = 1000 * Math.sin((2 * Math.PI * freq * i) / rate)
  return x
}

/** Amplitude of the component at `freq` (least squares fit of sin+cos over the middle half). */
function amplitudeAt(x: Float32Array, rate: number, freq: number): number {
  let s = 0
  let c = 0
  const lo = Math.floor(x.length / 4)
  const hi = Math.floor((3 * x.length) / 4)
  for (let i = lo; i < hi; i++) {
    s += x[i] * Math.sin((2 * Math.PI * freq * i) / rate)
    c += x[i] * Math.cos((2 * Math.PI * freq * i) / rate)
  }
  return (2 * Math.hypot(s, c)) / (hi - lo)
}

/** Frequency by counting upward zero crossings over the middle half. */
function zeroCrossingFreq(x: Float32Array, rate: number): number {
  const lo = Math.floor(x.length / 4)
  const hi = Math.floor((3 * x.length) / 4)
  let first = -1
  let last = -1
  let count = 0
  for (let i = lo + 1; i < hi; i++) {
    if (x[i - 1] < 0 && x[i] >= 0) {
      const at = i - 1 + x[i - 1] / (x[i - 1] - x[i])
      if (first < 0) first = at
      else count++
      last = at
    }
  }
  return (count * rate) / (last - first)
}

t.test("resample keeps a sine's frequency and amplitude, removes what is above Nyquist", async (tt) => {
  for (const [from, to, f] of [
    [16000, 8000, 440],
    [8000, 16000, 1000],
    [44100, 16000, 3000],
    [22050, 16000, 6000],
  ]) {
    // pass band: the width-6 Hann sinc (as torchaudio's) droops 1.5% at 0.75·Nyquist, ~2 dB at 0.875
    const y = resample(sine(f, from, 1), from, to)
    tt.equal(y.length, Math.ceil((to * 1 * from) / from), `${from}→${to}: length ceil(n·to/from)`)
    const zf = zeroCrossingFreq(y, to)
    tt.ok(Math.abs(zf - f) < 0.5, `${from}→${to}: ${f} Hz stays ${zf.toFixed(2)} Hz`)
    const amp = amplitudeAt(y, to, f)
    tt.ok(Math.abs(amp - 1000) < 20, `${from}→${to}: amplitude ${amp.toFixed(1)} ≈ 1000 (±2%)`)
  }
  // 6 kHz cannot exist at 8 kHz: it must be filtered, not aliased to 2 kHz
  const alias = resample(sine(6000, 16000, 1), 16000, 8000)
  const leak = amplitudeAt(alias, 8000, 2000)
  tt.ok(leak < 10, `6 kHz → 8 kHz rate: alias at 2 kHz is ${leak.toFixed(2)} (< 1% of 1000)`)
  tt.same(resample(Float32Array.from([1, 2]), 8000, 8000), Float32Array.from([1, 2]), 'same rate: copy')
  tt.throws(() => resample(new Float32Array(4), 0, 8000), /fromRate a positive integer/)
  tt.throws(() => resample(new Float32Array(4), 8000, 11025.5), /toRate a positive integer/)
})
