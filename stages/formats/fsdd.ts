import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { KtpError } from '../../schemas/errors.js'
import { readAudioHeader } from './audio-header.js'
import { type Corpus, addUtt, emptyCorpus } from './corpus.js'

/**
 * Free Spoken Digit Dataset: `{digit}_{speaker}_{take}.wav`, in `SRC/recordings/` or in SRC
 * itself. Utterance id `speaker-digit-take` (speaker first, as Kaldi wants), text = the digit as a
 * word, so that word-level tools (lexicon, WER) need no special case.
 */
export const DIGIT_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'] as const

const NAME = /^(\d)_([A-Za-z0-9]+)_(\d+)\.wav$/i

export function readFsdd(src: string): Corpus {
  if (!existsSync(src) || !statSync(src).isDirectory()) throw new KtpError('no-dir', `${src}: no such directory`)
  const dir = existsSync(join(src, 'recordings')) ? join(src, 'recordings') : src
  const c = emptyCorpus()
  const names = readdirSync(dir).sort()
  let other = 0
  for (const name of names) {
    const m = NAME.exec(name)
    if (!m) {
      if (/\.wav$/i.test(name)) other++
      continue
    }
    const [, digit, speaker, take] = m
    const path = resolve(dir, name)
    const h = readAudioHeader(path)
    if (!h) {
      c.warnings.push(`${path}: not a RIFF/WAVE file; skipped`)
      continue
    }
    addUtt(
      c,
      {
        utt: `${speaker}-${digit}-${take}`,
        speaker,
        audio: path,
        text: DIGIT_WORDS[Number(digit)],
        dur: h.frames / h.sampleRate,
      },
      path,
    )
  }
  if (other) c.warnings.push(`${dir}: ${other} .wav file(s) not named {digit}_{speaker}_{take}.wav; skipped`)
  if (c.data.wav.size === 0)
    throw new KtpError('empty-corpus', `${dir}: no FSDD recordings ({digit}_{speaker}_{take}.wav) found`)
  return c
}

/**
 * Recordings per speaker: every speaker with a recording, and every speaker `speakers.json` (the
 * corpus' own speaker list, beside `recordings/`) names, at 0 when none of their recordings is there.
 */
export function fsddSpeakers(src: string): Map<string, number> {
  const counts = new Map<string, number>()
  const list = join(src, 'speakers.json')
  if (existsSync(list)) {
    let named: unknown
    try {
      named = JSON.parse(readFileSync(list, 'utf8'))
    } catch (err) {
      throw new KtpError('usage', `${list}: not valid JSON (${(err as Error).message})`)
    }
    if (named && typeof named === 'object' && !Array.isArray(named))
      for (const s of Object.keys(named)) counts.set(s, 0)
  }
  for (const spk of readFsdd(src).data.utt2spk.values()) counts.set(spk, (counts.get(spk) ?? 0) + 1)
  return counts
}
