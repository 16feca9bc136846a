import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { z } from 'zod'
import { KtpError } from '../../schemas/errors.js'
import { writeFileAtomic } from '../../pipeline/io/atomic-file.js'
import { letSignalsIn } from '../../pipeline/io/signals.js'
import { decodeAudio } from '../audio/decode.js'
import { encodeWav16 } from '../audio/wav-write.js'
import { DIGIT_WORDS, readFsdd } from '../formats/fsdd.js'
import { type CtmSegment, formatCtm } from '../formats/ctm.js'
import { type DataDirMaps, writeDataDir } from '../formats/datadir-io.js'
import { mulberry32 } from '../nn/init.js'

/**
 * `ktp connect-digits`: connected-digit utterances from the isolated FSDD recordings (docs/ARCHITECTURE.md §6).
 * Each speaker's recordings are shuffled (seeded) and consumed in strings of minDigits…maxDigits,
 * each recording used once, joined by short silences of low seeded noise, with leading and
 * trailing silence. The true digit boundaries are written as a word CTM, which is what lets the
 * alignment be checked against the truth. Speakers are split into train/dev/test: never train and
 * test on one speaker; tune decoding on dev, report on test.
 */
export const connectDigitsOptions = z
  .object({
    seed: z
      .number()
      .int()
      .default(1)
      .describe('seed of the shuffling, the string lengths, the gaps and the silence noise'),
    minDigits: z.number().int().min(1).default(1).describe('fewest digits in a string'),
    maxDigits: z.number().int().min(1).default(7).describe('most digits in a string'),
    minGapMs: z.number().min(0).default(40).describe('shortest silence between two digits, ms'),
    maxGapMs: z.number().min(0).default(200).describe('longest silence between two digits, ms'),
    edgeMs: z.number().min(0).default(120).describe('silence before the first and after the last digit, ms'),
    noise: z.number().min(0).default(4).describe('standard deviation of the silence noise, in int16 units'),
    testSpeakers: z.string().default('george').describe('comma-separated speakers of the test split'),
    devSpeakers: z.string().default('lucas').describe('comma-separated speakers of the dev split (tuning)'),
    maxPerSpeaker: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('use at most this many recordings per speaker (0 = all)'),
  })
  .refine((o) => o.maxDigits >= o.minDigits, { message: 'maxDigits must be ≥ minDigits', path: ['maxDigits'] })
  .refine((o) => o.maxGapMs >= o.minGapMs, { message: 'maxGapMs must be ≥ minGapMs', path: ['maxGapMs'] })
export type ConnectDigitsOptions = z.infer<typeof connectDigitsOptions>

export interface Recording {
  path: string
  speaker: string
  digit: number
}

export interface PlannedUtt {
  utt: string
  speaker: string
  split: 'train' | 'dev' | 'test'
  parts: Recording[]
  /** silences in ms: before part 0, between parts, after the last (parts.length + 1 values). */
  gapsMs: number[]
}

/** The whole plan from the recording list and options alone: deterministic, no audio read. */
export function planConnectedDigits(recs: Recording[], o: ConnectDigitsOptions): PlannedUtt[] {
  const test = new Set(
    o.testSpeakers
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  )
  const dev = new Set(
    o.devSpeakers
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  )
  const bySpk = new Map<string, Recording[]>()
  for (const r of [...recs].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    if (!bySpk.has(r.speaker)) bySpk.set(r.speaker, [])
    bySpk.get(r.speaker)!.push(r)
  }
  for (const s of [...test, ...dev])
    if (!bySpk.has(s))
      throw new KtpError('usage', `speaker '${s}' has no recordings (speakers: ${[...bySpk.keys()].join(', ')})`)
  const out: PlannedUtt[] = []
  for (const speaker of [...bySpk.keys()].sort()) {
    const rand = mulberry32((o.seed * 7919 + [...speaker].reduce((a, c) => a * 31 + c.charCodeAt(0), 0)) >>> 0)
    let list = bySpk.get(speaker)!
    for (let i = list.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1))
      ;[list[i], list[j]] = [list[j], list[i]]
    }
    if (o.maxPerSpeaker > 0) list = list.slice(0, o.maxPerSpeaker)
    const split = test.has(speaker) ? 'test' : dev.has(speaker) ? 'dev' : 'train'
    let k = 0
    for (let i = 0; i < list.length; ) {
      const n = Math.min(list.length - i, o.minDigits + Math.floor(rand() * (o.maxDigits - o.minDigits + 1)))
      const parts = list.slice(i, i + n)
      i += n
      const gapsMs = [o.edgeMs, ...parts.slice(1).map(() => o.minGapMs + rand() * (o.maxGapMs - o.minGapMs)), o.edgeMs]
      out.push({ utt: `${speaker}-${String(k++).padStart(4, '0')}`, speaker, split, parts, gapsMs })
    }
  }
  return out
}

/** Gaussian noise (Box–Muller) from a seeded stream, for silences that are not digital zero. */
function noise(n: number, std: number, rand: () => number): Float32Array {
  const out = new Float32Array(n)
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(rand(), 1e-12)
    const v = rand()
    const r = Math.sqrt(-2 * Math.log(u)) * std
    out[i] = r * Math.cos(2 * Math.PI * v)
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v)
  }
  return out
}

/** Synthesise one planned utterance: samples and its true word segments (seconds). */
export function renderUtt(
  p: PlannedUtt,
  o: ConnectDigitsOptions,
  read: (path: string) => { sampleRate: number; samples: Float32Array },
): { sampleRate: number; samples: Float32Array; words: CtmSegment[] } {
  const rand = mulberry32((o.seed ^ [...p.utt].reduce((a, c) => (a * 33 + c.charCodeAt(0)) >>> 0, 5381)) >>> 0)
  const audio = p.parts.map((r) => read(r.path))
  const rate = audio[0].sampleRate
  for (const [i, a] of audio.entries()) {
    if (a.sampleRate !== rate)
      throw new KtpError(
        'rate-mismatch',
        `${p.parts[i].path}: ${a.sampleRate} Hz, but ${p.parts[0].path} is ${rate} Hz`,
      )
  }
  const gaps = p.gapsMs.map((ms) => Math.round((ms / 1000) * rate))
  const total = gaps.reduce((a, b) => a + b, 0) + audio.reduce((a, x) => a + x.samples.length, 0)
  const samples = noise(total, o.noise, rand)
  const words: CtmSegment[] = []
  let pos = gaps[0]
  audio.forEach((a, i) => {
    for (let j = 0; j < a.samples.length; j++) samples[pos + j] += a.samples[j]
    words.push({ channel: '1', start: pos / rate, dur: a.samples.length / rate, label: DIGIT_WORDS[p.parts[i].digit] })
    pos += a.samples.length + gaps[i + 1]
  })
  return { sampleRate: rate, samples, words }
}

/**
 * Build the three data dirs under `out` (train, dev, test) with wavs in `out/wav`. Each wav is
 * written whole, the data dirs last; between utterances a pending SIGINT/SIGTERM is let in (the
 * loop is long and synchronous: without that a signal waited for its end).
 */
export async function connectDigits(
  src: string,
  out: string,
  o: ConnectDigitsOptions,
  log: (l: string) => void = () => {},
): Promise<Record<string, number>> {
  const corpus = readFsdd(src)
  const recs: Recording[] = []
  for (const [utt, path] of corpus.data.wav) {
    const digit = DIGIT_WORDS.indexOf(corpus.data.text!.get(utt) as (typeof DIGIT_WORDS)[number])
    recs.push({ path, speaker: corpus.data.utt2spk.get(utt)!, digit })
  }
  const plan = planConnectedDigits(recs, o)
  const wavDir = resolve(out, 'wav')
  const splits: Record<string, { d: DataDirMaps; ctm: Map<string, CtmSegment[]> }> = {}
  const read = (p: string) => decodeAudio(new Uint8Array(readFileSync(p)), { name: p })
  for (const p of plan) {
    await letSignalsIn()
    splits[p.split] ??= {
      d: { wav: new Map(), segments: null, utt2spk: new Map(), text: new Map(), utt2dur: new Map() },
      ctm: new Map(),
    }
    const s = splits[p.split]
    const r = renderUtt(p, o, read)
    const path = join(wavDir, `${p.utt}.wav`)
    const bytes = encodeWav16(r.samples, r.sampleRate)
    if (!existsSync(path) || !readFileSync(path).equals(bytes)) writeFileAtomic(path, bytes)
    s.d.wav.set(p.utt, path)
    s.d.utt2spk.set(p.utt, p.speaker)
    s.d.text!.set(p.utt, r.words.map((w) => w.label).join(' '))
    s.d.utt2dur!.set(p.utt, r.samples.length / r.sampleRate)
    s.ctm.set(p.utt, r.words)
  }
  const counts: Record<string, number> = {}
  for (const [name, s] of Object.entries(splits)) {
    writeDataDir(join(out, name), s.d, { 'words.ctm': formatCtm(s.ctm) })
    counts[name] = s.d.wav.size
    log(
      `ktp connect-digits: ${name}: ${s.d.wav.size} utterances from speakers ${[...new Set(s.d.utt2spk.values())].join(', ')}`,
    )
  }
  return counts
}
