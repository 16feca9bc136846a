import { createHash } from 'node:crypto'
import { existsSync, readFileSync, statSync, unlinkSync } from 'node:fs'
import { join, resolve, sep } from 'node:path'
import { KtpError } from '../../schemas/errors.js'
import { writeFileAtomic } from '../../pipeline/io/atomic-file.js'
import {
  TextTable,
  cCompare,
  checkId,
  expectFields,
  fmtSeconds,
  parseTable,
  sortedEntries,
  sortedKeys,
  tableLine,
} from './kaldi-tables.js'

/**
 * Kaldi data directories (https://kaldi-asr.org/doc/data_prep.html), read and written with the
 * checks of Kaldi's `utils/validate_data_dir.sh` that matter to ktp:
 *   wav.scp   `rec path` or `rec cmd … |` (an extended filename: a shell pipeline writing audio)
 *   segments  `utt rec start end` (seconds; end -1 = to the end of the recording) — optional;
 *             without it every wav.scp key is an utterance
 *   utt2spk   `utt spk`, required for every utterance
 *   spk2utt   `spk utt utt …`, derived from utt2spk (checked against it when present)
 *   text      `utt transcript…` — optional, and may omit utterances (unlabelled data)
 *   utt2dur   `utt seconds` — optional
 * Tables are written in C byte order. Errors name the file and line. Relative audio paths are
 * relative to the current directory, as in Kaldi (ktp prepare writes absolute ones).
 */
export interface Segment {
  rec: string
  start: number
  /** null = to the end of the recording (Kaldi's -1). */
  end: number | null
}

/**
 * The tables of a data dir. readDataDir gives TextTables for the string tables, which hold a
 * 48,000-utterance data dir in a few bytes per utterance beyond its text (see text-table.ts).
 */
export interface DataDir {
  /** recording (or utterance, without segments) → wav.scp entry. */
  wav: ReadonlyMap<string, string>
  segments: ReadonlyMap<string, Segment> | null
  utt2spk: ReadonlyMap<string, string>
  text: ReadonlyMap<string, string> | null
  utt2dur: ReadonlyMap<string, number> | null
}

/** A data dir being built in memory (a corpus reader's, a generator's). */
export interface DataDirMaps extends DataDir {
  wav: Map<string, string>
  segments: Map<string, Segment> | null
  utt2spk: Map<string, string>
  text: Map<string, string> | null
  utt2dur: Map<string, number> | null
}

export interface DataDirUtt {
  utt: string
  speaker: string
  /** The wav.scp entry of its recording: a path, or a command ending in `|`. */
  audio: string
  rec: string
  start: number | null
  end: number | null
  text: string | null
}

/** A POSIX path that path.resolve returns unchanged: absolute, no empty, `.` or `..` segment. */
const NORMAL_ABSOLUTE = /^(?:\/(?!\.\.?(?:\/|$))[^/]+)+$/

/**
 * path.resolve(entry), skipping its string work for the usual wav.scp entry, an absolute path
 * already in normal form (it costs per recording, twice: fingerprint and read).
 */
export function resolveEntry(entry: string): string {
  return sep === '/' && NORMAL_ABSOLUTE.test(entry) ? entry : resolve(entry)
}

/** A wav.scp entry that is a command (Kaldi's `cmd |` extended filename). */
export function isCommand(entry: string): boolean {
  return /\|\s*$/.test(entry)
}

/** The utterance ids of a data dir, in C order. */
export function uttIds(d: DataDir): string[] {
  return d.segments ? sortedKeys(d.segments) : sortedKeys(d.wav)
}

/** uttIds made one at a time (for the tables readDataDir gives: see TextTable.sortedEntries). */
export function* eachUttId(d: DataDir): Iterable<string> {
  for (const [u] of sortedEntries<unknown>(d.segments ?? d.wav)) yield u
}

/** The number of utterances of a data dir. */
export function uttCount(d: DataDir): number {
  return (d.segments ?? d.wav).size
}

export function spk2utt(utt2spk: ReadonlyMap<string, string>): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const u of sortedKeys(utt2spk)) {
    const s = utt2spk.get(u)!
    if (!out.has(s)) out.set(s, [])
    out.get(s)!.push(u)
  }
  return new Map(sortedKeys(out).map((s) => [s, out.get(s)!]))
}

/**
 * Whether the speakers of the utterances, in C order of the utterances, never go down: then
 * spk2utt's order (utt2spk's stably sorted by speaker) is utt2spk's own, as Kaldi wants.
 */
export function speakersSortWithUtts(utt2spk: ReadonlyMap<string, string>): boolean {
  let prev: string | undefined
  for (const [, spk] of sortedEntries(utt2spk)) {
    if (prev !== undefined && cCompare(prev, spk) > 0) return false
    prev = spk
  }
  return true
}

/**
 * spk2utt a speaker at a time, as spk2utt() orders it; each speaker's utterances must be taken
 * before the next speaker. When speakers sort with their utterances (the usual, speaker-prefixed
 * ids) a speaker is a run of the sorted utt2spk, taken as it comes instead of holding every
 * utterance id in a map of lists (see TextTable.sortedEntries).
 */
export function* spk2uttRuns(utt2spk: ReadonlyMap<string, string>): Iterable<[string, Iterable<string>]> {
  if (!speakersSortWithUtts(utt2spk)) {
    yield* spk2utt(utt2spk)
    return
  }
  const it = sortedEntries(utt2spk)[Symbol.iterator]()
  let at = it.next()
  let current = 0
  while (!at.done) {
    const spk = at.value[1]
    const group = ++current
    const utts = (function* () {
      if (group !== current) throw new Error(`spk2uttRuns: the ids of '${spk}' taken after the next speaker`)
      for (; !at.done && at.value[1] === spk; at = it.next()) yield at.value[0]
    })()
    yield [spk, utts]
    // what the caller left of this speaker
    while (!at.done && at.value[1] === spk) at = it.next()
  }
}

/** The row of utterance `utt`, resolved through segments to its recording's entry. */
export function dataDirUtt(d: DataDir, utt: string): DataDirUtt {
  const seg = d.segments?.get(utt)
  const rec = seg ? seg.rec : utt
  return {
    utt,
    speaker: d.utt2spk.get(utt)!,
    audio: d.wav.get(rec)!,
    rec,
    start: seg ? seg.start : null,
    end: seg ? seg.end : null,
    text: d.text?.get(utt) ?? null,
  }
}

function parseSeconds(s: string, source: string, line: number, what: string): number {
  const v = Number(s)
  if (s === '' || !Number.isFinite(v))
    throw new KtpError('bad-line', `${source}:${line}: ${what} '${s}' is not a number`)
  return v
}

/**
 * Check the tables against each other. Returns warnings (things Kaldi tolerates or that only
 * some tools need); throws on what would make ktp or Kaldi misread the data.
 */
export function validateDataDir(d: DataDir, dir: string): string[] {
  const warnings: string[] = []
  const f = (name: string) => join(dir, name)
  for (const k of d.wav.keys()) checkId(k, 'recording id', f('wav.scp'))
  if (d.segments) {
    for (const [u, s] of d.segments) {
      checkId(u, 'utterance id', f('segments'))
      if (!d.wav.has(s.rec))
        throw new KtpError(
          'missing-recording',
          `${f('segments')}: utterance '${u}' names recording '${s.rec}', which is not in wav.scp`,
        )
      if (s.start < 0 || (s.end !== null && s.end <= s.start)) {
        throw new KtpError(
          'bad-segment',
          `${f('segments')}: utterance '${u}': expected 0 ≤ start < end, got start ${s.start}, end ${s.end ?? -1}`,
        )
      }
    }
  }
  // (the table of the utterances answers `has`: a Set of 48,000 ids was a copy of it)
  const utts: ReadonlyMap<string, unknown> = d.segments ?? d.wav
  for (const u of eachUttId(d)) {
    if (!d.utt2spk.has(u))
      throw new KtpError(
        'missing-speaker',
        `${f('utt2spk')}: utterance '${u}' (from ${d.segments ? 'segments' : 'wav.scp'}) has no speaker`,
      )
  }
  for (const [u, s] of d.utt2spk) {
    if (!utts.has(u))
      throw new KtpError(
        'unknown-utt',
        `${f('utt2spk')}: utterance '${u}' is not in ${d.segments ? 'segments' : 'wav.scp'}`,
      )
    checkId(s, 'speaker id', `${f('utt2spk')} (utterance '${u}')`)
  }
  for (const [name, table] of [
    ['text', d.text],
    ['utt2dur', d.utt2dur],
  ] as const) {
    if (!table) continue
    for (const u of table.keys())
      if (!utts.has(u))
        throw new KtpError(
          'unknown-utt',
          `${f(name)}: utterance '${u}' is not in ${d.segments ? 'segments' : 'wav.scp'}`,
        )
    let missing = 0
    let first = ''
    for (const u of eachUttId(d)) if (!table.has(u) && missing++ === 0) first = u
    if (missing) warnings.push(`${f(name)}: ${missing} utterance(s) have no entry, e.g. '${first}'`)
  }
  // Kaldi sorts utt2spk by utterance and spk2utt by speaker and wants both orders to agree,
  // which holds when utterance ids start with their speaker id. ktp does not need it.
  if (!speakersSortWithUtts(d.utt2spk)) {
    warnings.push(
      `${f('utt2spk')}: utterance ids do not sort with their speakers (Kaldi's validate_data_dir.sh wants speaker-prefixed ids)`,
    )
  }
  return warnings
}

function readIf(path: string): string | null {
  return existsSync(path) ? readFileSync(path, 'utf8') : null
}

/** A table read as bytes, for a TextTable. */
function readBytesIf(path: string): Buffer | null {
  return existsSync(path) ? readFileSync(path) : null
}

/** A list of utterance ids as compared and reported: sha256 of the ids joined by spaces, count, first five. */
interface UttList {
  digest: string
  count: number
  head: string[]
}

function uttList(utts: Iterable<string>): UttList {
  const h = createHash('sha256')
  const head: string[] = []
  let count = 0
  for (const u of utts) {
    h.update(count ? ` ${u}` : u)
    if (count++ < 5) head.push(u)
  }
  return { digest: h.digest('hex'), count, head }
}

/** Read and validate a Kaldi data directory. */
export function readDataDir(dir: string): { data: DataDir; warnings: string[] } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new KtpError('no-dir', `${dir}: no such data directory`)
  const src = (n: string) => join(dir, n)
  const wavText = readBytesIf(src('wav.scp'))
  if (wavText === null)
    throw new KtpError('no-file', `${src('wav.scp')}: missing; a Kaldi data dir needs wav.scp and utt2spk`)
  const utt2spkText = readBytesIf(src('utt2spk'))
  if (utt2spkText === null)
    throw new KtpError('no-file', `${src('utt2spk')}: missing; a Kaldi data dir needs wav.scp and utt2spk`)

  const wav = TextTable.parse(wavText, src('wav.scp'))
  for (const l of wav.rows()) {
    if (l.rest === '')
      throw new KtpError('bad-line', `${src('wav.scp')}:${l.line}: recording '${l.key}' has no path or command`)
  }
  let segments: Map<string, Segment> | null = null
  const segText = readIf(src('segments'))
  if (segText !== null) {
    segments = new Map()
    for (const l of parseTable(segText, src('segments'))) {
      const [rec, a, b] = expectFields(l, 3, src('segments'), 'utt rec start end')
      const start = parseSeconds(a, src('segments'), l.line, 'start')
      const end = parseSeconds(b, src('segments'), l.line, 'end')
      segments.set(l.key, { rec, start, end: end < 0 ? null : end })
    }
  }
  // (one field: the value, the rest of the line, is the speaker)
  const utt2spk = TextTable.parse(utt2spkText, src('utt2spk'))
  for (const l of utt2spk.rows()) expectFields(l, 1, src('utt2spk'), 'utt speaker')

  const textT = readBytesIf(src('text'))
  const text = textT === null ? null : TextTable.parse(textT, src('text'))
  const durT = readIf(src('utt2dur'))
  const utt2dur =
    durT === null
      ? null
      : new Map(
          parseTable(durT, src('utt2dur')).map((l) => {
            const [v] = expectFields(l, 1, src('utt2dur'), 'utt seconds')
            return [l.key, parseSeconds(v, src('utt2dur'), l.line, 'duration')] as [string, number]
          }),
        )
  const data: DataDir = { wav, segments, utt2spk, text, utt2dur }
  const warnings = validateDataDir(data, dir)

  const s2uText = readBytesIf(src('spk2utt'))
  if (s2uText !== null) {
    // each speaker's list as its digest, count and first ids (lists of ids, all held at once,
    // outlived V8's young generation: see TextTable), the file's lines parsed one at a time
    const derived = new Map<string, UttList>()
    for (const [s, us] of spk2uttRuns(utt2spk)) derived.set(s, uttList(us))
    for (const l of TextTable.parse(s2uText, src('spk2utt')).rows()) {
      const want = derived.get(l.key)
      const got = [...l.fields].sort(cCompare)
      if (!want || want.digest !== uttList(got).digest) {
        throw new KtpError(
          'inconsistent',
          `${src('spk2utt')}:${l.line}: speaker '${l.key}' lists [${got.slice(0, 5).join(' ')}${got.length > 5 ? ' …' : ''}] but utt2spk gives [${(want?.head ?? []).join(' ')}${(want?.count ?? 0) > 5 ? ' …' : ''}]; delete spk2utt to have it derived`,
        )
      }
      derived.delete(l.key)
    }
    if (derived.size)
      throw new KtpError(
        'inconsistent',
        `${src('spk2utt')}: speaker '${[...derived.keys()][0]}' of utt2spk is missing; delete spk2utt to have it derived`,
      )
  }
  return { data, warnings }
}

const OPTIONAL_TABLES = ['segments', 'text', 'utt2dur'] as const

/**
 * The text of each table as ktp writes it (C order, spk2utt derived). Absent tables are omitted.
 * Made from formatDataDirLines, so the fingerprint (which hashes those lines) and the files on
 * disk cannot format a line differently.
 */
export function formatDataDir(d: DataDir): Record<string, string> {
  const files: Record<string, string> = {}
  formatDataDirLines(d, (name, lines) => {
    files[name] = [...lines()].join('')
  })
  return files
}

/**
 * The tables of a data dir line by line, as formatDataDir writes them, in the key order canonicalJson gives its object
 * (JS string order of the names), without building any table's text: `emit(name, lines, first)`
 * per table, `lines()` yielding that table's text in order: its lines, each with its newline (a
 * spk2utt line in several pieces).
 */
export function formatDataDirLines(
  d: DataDir,
  emit: (name: string, lines: () => Iterable<string>, first: boolean) => void,
): void {
  const tableLines = function* <T>(m: ReadonlyMap<string, T>, value: (v: T) => string) {
    for (const [k, v] of sortedEntries(m)) yield tableLine(k, value(v))
  }
  const same = (v: string) => v
  const tables: [string, () => Iterable<string>][] = [
    ['wav.scp', () => tableLines(d.wav, same)],
    ['utt2spk', () => tableLines(d.utt2spk, same)],
    [
      'spk2utt',
      function* () {
        // (a speaker's line in pieces: its ids are not held as a list)
        for (const [s, us] of spk2uttRuns(d.utt2spk)) {
          yield s
          for (const u of us) yield ` ${u}`
          yield '\n'
        }
      },
    ],
  ]
  const segs = d.segments
  if (segs) {
    const seg = (s: Segment) => `${s.rec} ${fmtSeconds(s.start)} ${s.end === null ? -1 : fmtSeconds(s.end)}`
    tables.push(['segments', () => tableLines(segs, seg)])
  }
  const text = d.text
  if (text) tables.push(['text', () => tableLines(text, same)])
  const dur = d.utt2dur
  if (dur) tables.push(['utt2dur', () => tableLines(dur, fmtSeconds)])
  tables.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  for (const [i, [name, lines]] of tables.entries()) emit(name, lines, i === 0)
}

/**
 * Validate, then write every table atomically. A table whose content is already on disk is not
 * rewritten (reruns are cheap and keep mtimes). An optional table (segments, text, utt2dur) this
 * data dir does not have is deleted, so that one left by an earlier run cannot contradict the new
 * ones. `extra` adds files such as phones.ctm. Returns the names written.
 */
export function writeDataDir(
  dir: string,
  d: DataDir,
  extra: Record<string, string> = {},
): { written: string[]; warnings: string[] } {
  const warnings = validateDataDir(d, dir)
  const files = { ...formatDataDir(d), ...extra }
  const written: string[] = []
  for (const [name, content] of Object.entries(files)) {
    const p = join(dir, name)
    if (existsSync(p) && readFileSync(p, 'utf8') === content) continue
    writeFileAtomic(p, content)
    written.push(name)
  }
  for (const name of OPTIONAL_TABLES) {
    if (!(name in files) && existsSync(join(dir, name))) {
      unlinkSync(join(dir, name))
      written.push(`-${name}`)
    }
  }
  return { written, warnings }
}

/** The part of a data dir holding `utts` (recordings kept only if one of their utterances is). */
export function subsetDataDir(d: DataDir, keep: (utt: string) => boolean): DataDir {
  const pick = <T>(m: ReadonlyMap<string, T> | null) => (m ? new Map([...m].filter(([u]) => keep(u))) : null)
  const segments = pick(d.segments)
  const recs = segments ? new Set([...segments.values()].map((s) => s.rec)) : null
  const wav = new Map([...d.wav].filter(([r]) => (recs ? recs.has(r) : keep(r))))
  return { wav, segments, utt2spk: pick(d.utt2spk)!, text: pick(d.text), utt2dur: pick(d.utt2dur) }
}
