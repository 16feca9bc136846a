/**
 * sclite `trn` transcripts: `word word ... (utterance-id)` per line.
 *
 * Parsing follows sclite 2.10 (SCTK src/sclite/align.c: load_refs, remove_id, extract_speaker):
 * - lines that are empty or whitespace only, and comment lines starting with `;;`, are skipped;
 * - unless case-sensitive, the whole line (words AND id) is lower-cased first, so `(SPK-a1)`
 *   and `(spk-A1)` are the same utterance;
 * - the id is the text between the LAST `(` and the LAST `)`; the words are everything before
 *   that `(`; anything after the `)` is ignored;
 * - the speaker (for `-i rm`, `spu_id`, `swb`) is the id up to the first `-`; only when the id has
 *   no `-` at all, up to the first `_` (so `carol_x-3` is speaker `carol_x`). An id with neither
 *   is an error, as in sclite.
 * sclite's alternation syntax (`{ a / b }`) and its null word `@` are not supported; they are
 * rejected rather than scored differently from sclite.
 */

export interface TrnEntry {
  /** utterance id without the parentheses (lower-cased unless case-sensitive) */
  readonly id: string
  readonly speaker: string
  readonly words: readonly string[]
  /** 1-based line number in the source, for error messages */
  readonly line: number
}

export interface TrnOptions {
  /** sclite `-s`: compare words (and ids) case-sensitively. Default false, as sclite. */
  readonly caseSensitive?: boolean
}

export class TrnError extends Error {
  override name = 'TrnError'
}

/** Speaker of an utterance id, by sclite's rule for `-i rm` (first `-`, else first `_`). */
export function speakerOf(id: string): string {
  let p = id.indexOf('-')
  if (p < 0) p = id.indexOf('_')
  if (p < 0) throw new TrnError(`cannot find the speaker in utterance id "${id}": expected a "-" or "_"`)
  return id.slice(0, p)
}

const UNSUPPORTED = new Set(['{', '}', '/', '@'])

/** Parses trn text. `source` names the file in error messages. */
export function parseTrn(text: string, opts: TrnOptions = {}, source = 'trn'): TrnEntry[] {
  const out: TrnEntry[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!
    if (line.startsWith(';;') || line.trim() === '') continue
    if (!opts.caseSensitive) line = line.toLowerCase()
    const l = line.lastIndexOf('(')
    const r = line.lastIndexOf(')')
    if (l < 0 || r < 0 || r < l) {
      throw new TrnError(`${source}:${i + 1}: no "(utterance-id)" in ${JSON.stringify(lines[i])}`)
    }
    const id = line.slice(l + 1, r)
    const words = line
      .slice(0, l)
      .split(/[ \t\r\n]+/)
      .filter((w) => w !== '')
    for (const w of words) {
      if (UNSUPPORTED.has(w) || w.startsWith('{') || w.endsWith('}')) {
        throw new TrnError(`${source}:${i + 1}: sclite alternation/null syntax ("${w}") is not supported`)
      }
    }
    let speaker: string
    try {
      speaker = speakerOf(id)
    } catch (e) {
      throw new TrnError(`${source}:${i + 1}: ${(e as Error).message}`)
    }
    out.push({ id, speaker, words, line: i + 1 })
  }
  return out
}
