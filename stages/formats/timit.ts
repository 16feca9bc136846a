import { readFileSync } from 'node:fs'
import { basename, dirname, relative, resolve, sep } from 'node:path'
import { KtpError } from '../../schemas/errors.js'
import { readAudioHeader } from './audio-header.js'
import { type Corpus, addUtt, emptyCorpus, walkFiles } from './corpus.js'
import type { CtmSegment } from './ctm.js'

/**
 * TIMIT in any letter case and two layouts:
 *   LDC:  TRAIN|TEST/DRn/SPKR/SENT.WAV (+ .PHN .WRD .TXT) — the corpus' own train/test division;
 *   flat: one directory per speaker, e.g. `dr1-fvmh0/sa1.wav` (a `drN-`/`drN_` prefix is dropped).
 * Utterance id `spkr-sent`, lower case (speaker-prefixed, as Kaldi wants); speaker `spkr`.
 * `.phn`/`.wrd` (sample-indexed) become phones.ctm/words.ctm in seconds, at the rate read from the
 * audio header (TIMIT is 16 kHz, but the header is the authority). `text` is the `.txt` sentence.
 * Copies that hold both `SA1.WAV` (SPHERE) and a converted `SA1.WAV.wav` (RIFF) give one
 * utterance: the RIFF one is kept.
 */
export interface TimitOptions {
  /** Leave out the SA dialect sentences (every speaker reads the same two; Kaldi's recipe drops them). */
  skipSa?: boolean
}

interface Group {
  wavs: string[]
  phn?: string
  wrd?: string
  txt?: string
}

function sampleCtm(path: string, rate: number): CtmSegment[] {
  const segs: CtmSegment[] = []
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((line, n) => {
      const t = line.trim().split(/\s+/)
      if (t.length === 1 && t[0] === '') return
      const a = Number(t[0])
      const b = Number(t[1])
      if (t.length !== 3 || !Number.isInteger(a) || !Number.isInteger(b) || b < a || a < 0) {
        throw new KtpError(
          'bad-alignment',
          `${path}:${n + 1}: expected 'start_sample end_sample label' with 0 ≤ start ≤ end, got '${line.trim()}'`,
        )
      }
      segs.push({ channel: '1', start: a / rate, dur: (b - a) / rate, label: t[2].toLowerCase() })
    })
  return segs
}

/** The speaker of the files in `dir`: its folder name, lower case, without a `drN-` prefix. */
function speakerOf(src: string, dir: string): string {
  const parts = relative(src, dir).split(sep)
  const strip = (s: string) => s.toLowerCase().replace(/^dr\d+[-_]/, '')
  return strip(parts[parts.length - 1]) || strip(basename(resolve(src)))
}

/**
 * Utterances per speaker, counting as a speaker every folder that holds TIMIT files (.wav, .phn,
 * .wrd, .txt): a speaker whose folder has transcripts but no usable audio counts 0, so that a
 * recipe can refuse to fold a corpus with an empty speaker rather than silently drop it.
 */
export function timitSpeakers(src: string, opts: TimitOptions = {}): Map<string, number> {
  const counts = new Map<string, number>()
  for (const f of walkFiles(src))
    if (/\.(wav|phn|wrd|txt)$/i.test(f) && basename(f).indexOf('.') > 0) counts.set(speakerOf(src, dirname(f)), 0)
  for (const spk of readTimit(src, opts).data.utt2spk.values()) counts.set(spk, (counts.get(spk) ?? 0) + 1)
  return counts
}

export function readTimit(src: string, opts: TimitOptions = {}): Corpus {
  const c = emptyCorpus()
  const groups = new Map<string, Group>()
  for (const f of walkFiles(src)) {
    const name = basename(f)
    const dot = name.indexOf('.')
    if (dot <= 0) continue
    const ext = name.slice(name.lastIndexOf('.') + 1).toLowerCase()
    if (!['wav', 'phn', 'wrd', 'txt'].includes(ext)) continue
    const key = `${dirname(f)}${sep}${name.slice(0, dot).toLowerCase()}`
    const g = groups.get(key) ?? { wavs: [] }
    groups.set(key, g)
    if (ext === 'wav') g.wavs.push(f)
    else g[ext as 'phn' | 'wrd' | 'txt'] = f
  }
  const ctmPhones = new Map<string, CtmSegment[]>()
  const ctmWords = new Map<string, CtmSegment[]>()
  const division = new Map<string, 'train' | 'test'>()
  for (const [key, g] of [...groups].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (g.wavs.length === 0) continue
    const sent = basename(key)
    if (opts.skipSa && /^sa\d/.test(sent)) continue
    const headers = g.wavs.map((w) => ({ w, h: readAudioHeader(w) }))
    const chosen = headers.find((x) => x.h?.format === 'riff') ?? headers.find((x) => x.h)
    if (!chosen?.h) {
      c.warnings.push(`${g.wavs[0]}: not a RIFF/WAVE or NIST SPHERE file; skipped`)
      continue
    }
    const parts = relative(src, dirname(key)).split(sep)
    const spk = speakerOf(src, dirname(key))
    const utt = `${spk}-${sent}`
    const rate = chosen.h.sampleRate
    let text: string | null = null
    if (g.txt) {
      const m = /^\s*\d+\s+\d+\s+(.*?)\s*$/.exec(readFileSync(g.txt, 'utf8').split('\n')[0] ?? '')
      if (m) text = m[1]
      else c.warnings.push(`${g.txt}: expected 'start end sentence'; no text for ${utt}`)
    }
    addUtt(c, { utt, speaker: spk, audio: resolve(chosen.w), text, dur: chosen.h.frames / rate }, chosen.w)
    if (g.phn) ctmPhones.set(utt, sampleCtm(g.phn, rate))
    if (g.wrd) ctmWords.set(utt, sampleCtm(g.wrd, rate))
    const split = [...parts].reverse().find((p) => /^(train|test)$/i.test(p))
    if (split) division.set(utt, split.toLowerCase() as 'train' | 'test')
  }
  if (c.data.wav.size === 0)
    throw new KtpError('empty-corpus', `${src}: no TIMIT audio found (expected SPKR/SENT.wav files, any letter case)`)
  if (ctmPhones.size) c.ctm['phones.ctm'] = ctmPhones
  if (ctmWords.size) c.ctm['words.ctm'] = ctmWords
  if (division.size === c.data.wav.size) c.division = division
  else if (division.size > 0)
    c.warnings.push(
      `${src}: only ${division.size} of ${c.data.wav.size} utterances are under TRAIN/TEST folders; ignoring the corpus division`,
    )
  return c
}
