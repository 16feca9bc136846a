import { existsSync, readFileSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { KtpError } from '../../schemas/errors.js'
import { readAudioHeader } from './audio-header.js'
import { type Corpus, addUtt, emptyCorpus } from './corpus.js'

/**
 * A TSV list `utt<TAB>path<TAB>speaker<TAB>transcript` (transcript may be empty or absent; a first
 * line `utt<TAB>path…` is a header; `#` lines are comments). Relative paths are relative to the
 * TSV file. Malformed lines are errors naming the line.
 */
export function readTsv(src: string): Corpus {
  if (!existsSync(src) || !statSync(src).isFile()) throw new KtpError('no-file', `${src}: no such TSV file`)
  const c = emptyCorpus()
  const base = dirname(resolve(src))
  readFileSync(src, 'utf8')
    .split('\n')
    .forEach((raw, n) => {
      const line = raw.replace(/\r$/, '')
      if (line.trim() === '' || line.startsWith('#')) return
      const f = line.split('\t')
      if (n === 0 && /^utt/i.test(f[0]) && /^(path|audio|wav)/i.test(f[1] ?? '')) return
      if (f.length < 3 || f.length > 4) {
        throw new KtpError(
          'bad-line',
          `${src}:${n + 1}: expected 'utt<TAB>path<TAB>speaker<TAB>transcript', got ${f.length} tab-separated field(s)`,
        )
      }
      const [utt, path, speaker] = f.map((x) => x.trim())
      const audio = resolve(base, path)
      if (!existsSync(audio))
        c.warnings.push(
          `${src}:${n + 1}: audio ${audio} does not exist (utterance '${utt}' will fail at feature extraction)`,
        )
      const h = existsSync(audio) ? readAudioHeader(audio) : null
      addUtt(
        c,
        { utt, speaker, audio, text: f[3]?.trim() ?? null, dur: h ? h.frames / h.sampleRate : null },
        `${src}:${n + 1}`,
      )
    })
  if (c.data.wav.size === 0) throw new KtpError('empty-corpus', `${src}: no utterances`)
  // utt2dur is all-or-nothing: Kaldi tools expect it to cover every utterance.
  if (c.data.utt2dur!.size !== c.data.wav.size) c.data.utt2dur = null
  return c
}
