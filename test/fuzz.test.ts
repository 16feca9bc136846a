// Property tests over ktp's readers of outside bytes: each must return a value or throw ktp's own
// typed error (AudioError, KtpError, TrnError) — never a TypeError/RangeError, never crash the
// process, never hang. Bounded: ≤ 200 runs per property, fixed seeds, the whole file in a few seconds.
// (test/audio-decode.test.ts already fuzzes decodeAudio on random bytes and on a mutated 16-bit mono
// WAVE and big-endian SPHERE; here: the other encodings and layouts, structured SPHERE headers, and
// readAudioHeader, which `ktp prepare` runs on every recording.)
import t from 'tap'
import fc from 'fast-check'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { AudioError, decodeAudio } from '../stages/audio/decode.js'
import { readAudioHeader } from '../stages/formats/audio-header.js'
import {
  matrixToKaldiText,
  parseKaldiIntVectors,
  parseKaldiMatrices,
  vectorToKaldiText,
} from '../stages/formats/kaldi-text.js'
import { formatTable, parseTable } from '../stages/formats/kaldi-tables.js'
import { formatDataDir, readDataDir } from '../stages/formats/datadir-io.js'
import { formatCtm, parseCtm, type CtmSegment } from '../stages/formats/ctm.js'
import { TrnError, parseTrn } from '../stages/scoring/trn.js'
import { openArrow } from '../pipeline/io/arrow-source.js'
import { puller } from '../pipeline/io/pull.js'
import { KtpError, UttError } from '../schemas/errors.js'
import { getMatrix, numFrames, uttId } from '../schemas/utterance.js'
import { tmp, uttList, writeFeatures } from './helpers.js'

const dir = tmp('ktp-fuzz-')

/** Run `f`; true if it returned, or threw one of `types` (anything else fails the property, with the error). */
function onlyTyped(f: () => unknown, ...types: (new (...a: never[]) => Error)[]): boolean {
  try {
    f()
    return true
  } catch (e) {
    if (types.some((T) => e instanceof T)) return true
    throw e
  }
}

// ------------------------------------------------------------------ bytes helpers

const ascii = (s: string) => Buffer.from(s, 'latin1')
function u32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n >>> 0)
  return b
}
function u16(n: number): Buffer {
  const b = Buffer.alloc(2)
  b.writeUInt16LE(n & 0xffff)
  return b
}

function riff(chunks: Buffer[]): Buffer {
  const body = Buffer.concat([ascii('WAVE'), ...chunks])
  return Buffer.concat([ascii('RIFF'), u32(body.length), body])
}
function chunk(id: string, body: Buffer): Buffer {
  return Buffer.concat([ascii(id), u32(body.length), body, body.length & 1 ? Buffer.alloc(1) : Buffer.alloc(0)])
}
function fmtChunk(tag: number, channels: number, rate: number, bits: number, extensible = false): Buffer {
  const base = Buffer.concat([
    u16(extensible ? 0xfffe : tag),
    u16(channels),
    u32(rate),
    u32((rate * channels * bits) / 8),
    u16((channels * bits) / 8),
    u16(bits),
  ])
  if (!extensible) return chunk('fmt ', base)
  const ext = Buffer.concat([
    u16(22),
    u16(bits),
    u32(3),
    u16(tag),
    Buffer.from([0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71]),
  ])
  return chunk('fmt ', Buffer.concat([base, ext]))
}

/** Valid files of the layouts the older property does not mutate. */
const VALID: { name: string; bytes: Buffer }[] = (() => {
  const frames = 6
  const data = (bytesPerFrame: number) =>
    Buffer.from(Array.from({ length: frames * bytesPerFrame }, (_, i) => (i * 37 + 11) & 0xff))
  const f32 = Buffer.alloc(frames * 4)
  for (let i = 0; i < frames; i++) f32.writeFloatLE(Math.sin(i) * 0.5, i * 4)
  const f64 = Buffer.alloc(frames * 2 * 8)
  for (let i = 0; i < frames * 2; i++) f64.writeDoubleLE(Math.cos(i) * 0.25, i * 8)
  const sphHead = (fields: string[], size = 256) => {
    const h = Buffer.alloc(size, 0x20)
    h.write(['NIST_1A', '    256', ...fields, 'end_head', ''].join('\n'), 'latin1')
    return h
  }
  return [
    { name: 'float32 mono', bytes: riff([fmtChunk(3, 1, 16000, 32), chunk('data', f32)]) },
    { name: 'float64 stereo extensible', bytes: riff([fmtChunk(3, 2, 8000, 64, true), chunk('data', f64)]) },
    {
      name: '24-bit stereo, data before an odd chunk',
      bytes: riff([chunk('LIST', Buffer.alloc(3)), fmtChunk(1, 2, 44100, 24), chunk('data', data(6))]),
    },
    { name: '32-bit int extensible mono', bytes: riff([fmtChunk(1, 1, 22050, 32, true), chunk('data', data(4))]) },
    {
      name: 'SPHERE stereo little-endian',
      bytes: Buffer.concat([
        sphHead([
          'sample_count -i 6',
          'sample_rate -i 16000',
          'channel_count -i 2',
          'sample_n_bytes -i 2',
          'sample_byte_format -s2 01',
          'sample_coding -s3 pcm',
        ]),
        data(4),
      ]),
    },
  ]
})()

const mutated = (base: Buffer) =>
  fc
    .record({
      edits: fc.array(
        fc.record({
          pos: fc.nat(base.length - 1),
          byte: fc.oneof(fc.nat(255), fc.constantFrom(0, 0xff, 0x80, 0x7f, 0x20, 0x0a)),
        }),
        { maxLength: 8 },
      ),
      cut: fc.option(fc.nat(base.length), { nil: undefined }),
      channel: fc.option(fc.integer({ min: -1, max: 3 }), { nil: undefined }),
    })
    .map(({ edits, cut, channel }) => {
      const b = Buffer.from(base)
      for (const { pos, byte } of edits) b[pos] = byte
      return { bytes: cut === undefined ? b : b.subarray(0, cut), channel }
    })

const checkDecode = (bytes: Uint8Array, channel?: number) =>
  onlyTyped(() => {
    const r = decodeAudio(bytes, { name: 'fuzz', channel })
    if (!(r.samples.length > 0 && r.sampleRate > 0 && r.samples.every(Number.isFinite)))
      throw new Error(`decoded nonsense: rate ${r.sampleRate}, ${r.samples.length} samples`)
  }, AudioError)

t.test(
  'decodeAudio: mutated float, 24/32-bit, extensible, multi-channel WAVE and SPHERE → samples or AudioError',
  async (t) => {
    for (const [k, v] of VALID.entries()) {
      t.ok(checkDecode(v.bytes, 0), `${v.name}: the unmutated file decodes`)
      fc.assert(
        fc.property(mutated(v.bytes), ({ bytes, channel }) => checkDecode(bytes, channel)),
        { numRuns: 40, seed: 100 + k },
      )
    }
  },
)

t.test('decodeAudio: structured SPHERE headers with random field values → samples or AudioError', async () => {
  const value = fc.oneof(
    fc.integer({ min: -3, max: 70000 }).map(String),
    fc.constantFrom('', 'x', '1e9', 'NaN', '-0', '01', '10', '1', 'pcm', 'ulaw', 'pcm,embedded-shorten-v2.00'),
    fc.string({ maxLength: 6 }),
  )
  const keys = fc.constantFrom(
    'sample_count',
    'sample_rate',
    'channel_count',
    'sample_n_bytes',
    'sample_byte_format',
    'sample_coding',
  )
  const field = fc
    .tuple(keys, fc.constantFrom('-i', '-r', '-s2', '-s9', '-x'), value)
    .map(([k, ty, v]) => `${k} ${ty} ${v}`)
  const header = fc
    .record({
      size: fc.oneof(
        fc.constant('   1024'),
        fc.constantFrom('      0', '     16', '9999999', '  -1024', 'abcdefg', '   1e3 '),
      ),
      fields: fc.array(field, { maxLength: 8 }),
      end: fc.boolean(),
      body: fc.uint8Array({ maxLength: 64 }),
    })
    .map(({ size, fields, end, body }) => {
      const h = Buffer.alloc(1024, 0x20)
      h.write(['NIST_1A', size, ...fields, ...(end ? ['end_head'] : []), ''].join('\n'), 'latin1')
      return Buffer.concat([h, Buffer.from(body)])
    })
  fc.assert(
    fc.property(header, fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }), (b, ch) => checkDecode(b, ch)),
    { numRuns: 200, seed: 7 },
  )
})

t.test('readAudioHeader (ktp prepare): mutated files → a sane header or null, never a throw', async (t) => {
  const p = join(dir, 'h.wav')
  const all = [...VALID, { name: 'tiny', bytes: riff([fmtChunk(1, 1, 8000, 16), chunk('data', Buffer.alloc(4))]) }]
  let agreed = 0
  fc.assert(
    fc.property(
      fc.nat(all.length - 1).chain((i) => mutated(all[i].bytes)),
      ({ bytes }) => {
        writeFileSync(p, bytes)
        const h = readAudioHeader(p)
        if (h === null) return true
        if (
          !(
            Number.isFinite(h.sampleRate) &&
            h.sampleRate > 0 &&
            Number.isFinite(h.frames) &&
            Number.isFinite(h.channels)
          )
        )
          return false
        try {
          const d = decodeAudio(bytes, { channel: 0 })
          if (d.sampleRate === h.sampleRate) agreed++
          return d.sampleRate === h.sampleRate
        } catch (e) {
          return e instanceof AudioError
        }
      },
    ),
    { numRuns: 200, seed: 8 },
  )
  t.pass(`200 mutated files; header and decoder agreed on the rate in all ${agreed} that decode`)
})

// ------------------------------------------------------------------ Kaldi text

const kaldiish = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        '[',
        ']',
        ' ',
        '  ',
        '\n',
        '\t',
        'utt',
        'u2',
        '1',
        '-2.5',
        '1e3',
        'nan',
        'inf',
        '-inf',
        'NaN',
        'x',
        '0x1f',
        '1.5.2',
        '\r',
      ),
      fc.string({ maxLength: 4 }),
    ),
    { maxLength: 40 },
  )
  .map((xs) => xs.join(''))

t.test('Kaldi text archives: any text → matrices/vectors or KtpError; what ktp writes reads back', async () => {
  fc.assert(
    fc.property(kaldiish, (s) =>
      onlyTyped(() => {
        for (const m of parseKaldiMatrices(s, 'f.ark'))
          if (m.data.length !== m.frames * m.width)
            throw new Error(`${m.utt}: ${m.data.length} values for ${m.frames}×${m.width}`)
      }, KtpError),
    ),
    { numRuns: 200, seed: 11 },
  )
  fc.assert(
    fc.property(kaldiish, (s) => onlyTyped(() => parseKaldiIntVectors(s, 'a.txt'), KtpError)),
    { numRuns: 200, seed: 12 },
  )
  const id = fc.stringMatching(/^[A-Za-z0-9_.\-$()]{1,8}$/)
  fc.assert(
    fc.property(
      id,
      fc.integer({ min: 0, max: 5 }),
      fc.integer({ min: 1, max: 4 }),
      fc.array(fc.float({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }), {
        minLength: 20,
        maxLength: 20,
      }),
      (utt, frames, width, vals) => {
        const data = Float32Array.from({ length: frames * width }, (_, i) => vals[i % vals.length])
        const back = parseKaldiMatrices(matrixToKaldiText(utt, data, frames, width), 'x')
        if (frames === 0) return back.length === 1 && back[0].frames === 0
        return (
          back.length === 1 &&
          back[0].utt === utt &&
          back[0].frames === frames &&
          back[0].width === width &&
          back[0].data.every((v, i) => Math.abs(v - data[i]) <= 1e-6 * Math.max(1, Math.abs(data[i])))
        )
      },
    ),
    { numRuns: 150, seed: 13 },
  )
  fc.assert(
    fc.property(id, fc.array(fc.integer({ min: -2147483648, max: 2147483647 }), { maxLength: 12 }), (utt, v) => {
      const back = parseKaldiIntVectors(vectorToKaldiText(utt, v), 'x')
      return back.length === 1 && back[0].utt === utt && back[0].values.join() === v.join()
    }),
    { numRuns: 100, seed: 14 },
  )
})

// ------------------------------------------------------------------ data dirs

const line = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        'a',
        'b',
        'utt1',
        'spk',
        ' ',
        '  ',
        '\t',
        '\r',
        '-1',
        '0.5',
        'x.wav',
        '|',
        'cat x |',
        '../../evil',
        '$(touch x)',
      ),
      fc.string({ maxLength: 5 }),
    ),
    { maxLength: 6 },
  )
  .map((x) => x.join(''))
const table = fc.array(line, { maxLength: 6 }).map((ls) => ls.join('\n'))

t.test('data-dir tables: any text → rows or KtpError; readDataDir on random tables → data or KtpError', async (t) => {
  fc.assert(
    fc.property(table, (s) =>
      onlyTyped(() => {
        const rows = parseTable(s, 'x')
        if (new Set(rows.map((r) => r.key)).size !== rows.length) throw new Error('duplicate keys returned')
        if (rows.some((r) => /\s/.test(r.key) || r.key === '')) throw new Error('a key with whitespace returned')
      }, KtpError),
    ),
    { numRuns: 200, seed: 21 },
  )
  // valid data dirs (a few utterances, optional tables), then a few random line-level edits
  const uttIds = fc.uniqueArray(fc.constantFrom('s1-u1', 's1-u2', 's2-u3', 's2-u4'), { minLength: 1, maxLength: 4 })
  const dd = fc
    .record({
      utts: uttIds,
      text: fc.boolean(),
      dur: fc.boolean(),
      spk2utt: fc.boolean(),
      cmd: fc.boolean(),
      edits: fc.array(
        fc.record({
          file: fc.constantFrom('wav.scp', 'utt2spk', 'text', 'utt2dur', 'spk2utt'),
          line: fc.nat(4),
          to: line,
        }),
        { maxLength: 2 },
      ),
    })
    .map(({ utts, text, dur, spk2utt, cmd, edits }) => {
      const spk = (u: string) => u.split('-')[0]
      const files: Record<string, string[]> = {
        'wav.scp': utts.map((u, i) => `${u} ${cmd && i === 0 ? `cat /a/${u}.wav |` : `/a/${u}.wav`}`),
        utt2spk: utts.map((u) => `${u} ${spk(u)}`),
      }
      if (text) files.text = utts.map((u) => `${u} hello world`)
      if (dur) files.utt2dur = utts.map((u, i) => `${u} ${1 + i / 4}`)
      if (spk2utt)
        files.spk2utt = [...new Set(utts.map(spk))].map((s) => `${s} ${utts.filter((u) => spk(u) === s).join(' ')}`)
      for (const e of edits) if (files[e.file]) files[e.file][e.line % Math.max(1, files[e.file].length)] = e.to
      return Object.fromEntries(Object.entries(files).map(([f, ls]) => [f, `${ls.join('\n')}\n`]))
    })
  let read = 0
  let n = 0
  fc.assert(
    fc.property(dd, (files) => {
      const d = join(dir, `dd${n++}`)
      mkdirSync(d)
      for (const [f, s] of Object.entries(files)) writeFileSync(join(d, f), s)
      return onlyTyped(() => {
        const { data } = readDataDir(d)
        read++
        // what ktp writes is again a valid data dir with the same content
        const again = join(dir, `dd${n++}`)
        mkdirSync(again)
        for (const [f, s] of Object.entries(formatDataDir(data))) writeFileSync(join(again, f), s)
        const back = readDataDir(again).data
        if (JSON.stringify(formatDataDir(back)) !== JSON.stringify(formatDataDir(data)))
          throw new Error('data dir does not survive write → read')
      }, KtpError)
    }),
    { numRuns: 150, seed: 22 },
  )
  t.ok(read > 0, `${read} of 150 random data dirs were valid and round-tripped; the rest failed with KtpError`)
  t.equal(
    formatTable(
      new Map([
        ['b', '2'],
        ['a', ''],
      ]),
    ),
    'a\nb 2\n',
  )
})

// ------------------------------------------------------------------ CTM and trn

t.test('CTM and trn: any text → entries or KtpError/TrnError; written CTM reads back', async () => {
  const ctmish = fc
    .array(
      fc
        .array(
          fc.oneof(
            fc.constantFrom('u1', '1', 'A', '0', '0.25', '-1', '1e400', 'NaN', 'sil', ';;', 'x'),
            fc.string({ maxLength: 4 }),
          ),
          { maxLength: 7 },
        )
        .map((f) => f.join(' ')),
      { maxLength: 6 },
    )
    .map((l) => l.join('\n'))
  fc.assert(
    fc.property(ctmish, (s) =>
      onlyTyped(() => {
        for (const segs of parseCtm(s, 'x.ctm').values()) {
          if (segs.some((g) => !(g.start >= 0 && g.dur >= 0))) throw new Error('negative or NaN time returned')
        }
      }, KtpError),
    ),
    { numRuns: 200, seed: 31 },
  )
  const seg = fc.record({
    channel: fc.constantFrom('1', 'A'),
    start: fc.integer({ min: 0, max: 10 ** 7 }).map((x) => x / 1000),
    dur: fc.integer({ min: 0, max: 10 ** 5 }).map((x) => x / 1000),
    label: fc.stringMatching(/^[a-z]{1,4}$/),
  })
  fc.assert(
    fc.property(
      fc.dictionary(fc.stringMatching(/^[a-z0-9_-]{1,6}$/), fc.array(seg, { minLength: 1, maxLength: 4 })),
      (d) => {
        const ctm = new Map(
          Object.entries(d).map(([u, ss]) => [u, [...ss].sort((a, b) => a.start - b.start)] as [string, CtmSegment[]]),
        )
        const back = parseCtm(formatCtm(ctm), 'x')
        return [...ctm].every(
          ([u, ss]) =>
            JSON.stringify(back.get(u)?.map((g) => [g.start, g.dur, g.label].join())) ===
            JSON.stringify(ss.map((g) => [g.start, g.dur, g.label].join())),
        )
      },
    ),
    { numRuns: 100, seed: 32 },
  )
  const trnish = fc
    .array(
      fc
        .array(
          fc.oneof(
            fc.constantFrom('(', ')', 'spk-u1', 'a_b', 'word', '{', '}', '/', '@', ';;', ' ', '\t', '\r', 'UPPER'),
            fc.string({ maxLength: 3 }),
          ),
          { maxLength: 8 },
        )
        .map((x) => x.join('')),
      { maxLength: 5 },
    )
    .map((l) => l.join('\n'))
  fc.assert(
    fc.property(trnish, fc.boolean(), (s, caseSensitive) =>
      onlyTyped(() => {
        for (const e of parseTrn(s, { caseSensitive }, 'x.trn'))
          if (typeof e.id !== 'string' || !e.words.every((w) => w.length > 0)) throw new Error('bad entry')
      }, TrnError),
    ),
    { numRuns: 200, seed: 33 },
  )
})

// ------------------------------------------------------------------ Arrow

/** Open, then read every row as a consumer does (id, frames, matrix view); bounded in time. */
async function readAll(path: string): Promise<number> {
  const a = await openArrow(path, ['features'])
  const next = puller(a.stream())
  let rows = 0
  try {
    for (let b = await next(); b; b = await next()) {
      uttId(b)
      const m = getMatrix(b, 'feats')
      if (m.data.length !== numFrames(b) * m.width) throw new KtpError('x', 'matrix view and frame count disagree')
      rows++
    }
  } finally {
    await a.close()
  }
  return rows
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    p,
    new Promise<T>((_, rej) => {
      timer = setTimeout(() => rej(new Error(`hung: ${what} did not settle in ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

t.test(
  'openArrow on mutated Arrow files and streams: reads, or fails with KtpError/UttError; never hangs',
  async (t) => {
    const stats = { read: 0, failed: 0 }
    for (const [k, format] of (['file', 'stream'] as const).entries()) {
      const src = join(dir, `valid-${format}.arrow`)
      writeFeatures(
        src,
        uttList(4, (i) => 3 + i),
        5,
        9 + k,
      )
      const { readFileSync } = await import('node:fs')
      let base = readFileSync(src)
      if (format === 'stream') {
        // the same rows as an IPC stream (what `-o -` writes): re-encode through the reader
        const { RecordBatchReader, RecordBatchStreamWriter } = await import('apache-arrow')
        const batches = [...RecordBatchReader.from(base)]
        base = Buffer.from(RecordBatchStreamWriter.writeAll(batches).toUint8Array(true))
      }
      writeFileSync(join(dir, 'm.arrow'), base)
      t.equal(await readAll(join(dir, 'm.arrow')), 4, `${format}: the unmutated input reads`)
      const mutation = fc.record({
        edits: fc.array(
          fc.record({
            pos: fc.nat(base.length - 1),
            byte: fc.oneof(fc.nat(255), fc.constantFrom(0, 0xff, 0x7f, 0x80)),
          }),
          { maxLength: 6 },
        ),
        cut: fc.option(fc.nat(base.length), { nil: undefined, freq: 4 }),
      })
      let n = 0
      await fc.assert(
        fc.asyncProperty(mutation, async ({ edits, cut }) => {
          const b = Buffer.from(base)
          for (const { pos, byte } of edits) b[pos] = byte
          const p = join(dir, `mut-${format}-${n++}.arrow`)
          writeFileSync(p, cut === undefined ? b : b.subarray(0, cut))
          try {
            await withTimeout(readAll(p), 5_000, p)
            stats.read++
            return true
          } catch (e) {
            if (!(e instanceof KtpError || e instanceof UttError)) throw e
            stats.failed++
            return true
          }
        }),
        { numRuns: 150, seed: 40 + k },
      )
    }
    t.pass(`300 mutated inputs: ${stats.read} read whole, ${stats.failed} failed with a typed error`)
  },
)
