import { createHash } from 'node:crypto'
import { existsSync, readFileSync, type Stats, statSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import type { RecordBatch, Schema } from 'apache-arrow'
import { utf16SortedEntries } from './kaldi-tables.js'
import { makeSchema } from '../../schemas/kinds.js'
import { META } from '../../schemas/metadata.js'
import { makeUttBatch } from '../../schemas/utterance.js'
import { writeFileAtomic } from '../../pipeline/io/atomic-file.js'
import { arrayStream } from '../../pipeline/io/pull.js'
import { readAudioBytes, refused } from './audio-bytes.js'
import type { StageInput } from '../../pipeline/io/run-stage.js'
import {
  type DataDir,
  type DataDirUtt,
  dataDirUtt,
  formatDataDirLines,
  isCommand,
  readDataDir,
  resolveEntry,
  eachUttId,
  uttCount,
} from './datadir-io.js'

export * from './datadir-io.js'
export { parseCtm, formatCtm, type CtmSegment } from './ctm.js'

/**
 * A Kaldi data dir as a ktp input: manifest@1 rows (one per utterance, C order) plus a content
 * fingerprint, so `ktp features` is rebuilt when a table or any audio file changes.
 *
 * Security: a wav.scp entry ending in `|` is a shell command (Kaldi's extended filename). Running
 * commands from a data dir someone handed you is running their code, so ktp refuses them (a
 * per-utterance error) unless `allowCommands`; then the entry is run as written with `sh -c`, as
 * Kaldi's popen does — ktp never splices ids or paths into it.
 */
export interface DataDirSourceOptions {
  allowCommands?: boolean
  /** Reuse audio hashes from `.ktp-audio-hashes.json` when size and mtime match (default true). */
  hashCache?: boolean
}

const CACHE = '.ktp-audio-hashes.json'
const HASH_JOBS = 8

/** Bytes a hash reader reads at a time (fs.ReadStream's own chunk size). */
const HASH_CHUNK = 1 << 16

/**
 * sha256 (32 hex) of a file's bytes, read in chunks so a long recording is never held whole.
 * `buf` is the reader's own chunk buffer, reused from file to file: a ReadStream per file
 * allocated a fresh 64 kB chunk for every one, and hashing a new data dir's 3,000 recordings left
 * ~14 MB of them to the GC at once, the peak of a first `ktp features` run.
 */
export async function hashFile(path: string, buf: Buffer = Buffer.allocUnsafe(HASH_CHUNK)): Promise<string> {
  const h = createHash('sha256')
  const file = await open(path, 'r')
  try {
    for (;;) {
      const { bytesRead } = await file.read(buf, 0, buf.length, null)
      if (bytesRead === 0) break
      h.update(buf.subarray(0, bytesRead))
    }
  } finally {
    await file.close()
  }
  return h.digest('hex').slice(0, 32)
}

type HashCache = Record<string, { size: number; mtimeMs: number; hash: string }>

function loadCache(dir: string): HashCache {
  try {
    const j = JSON.parse(readFileSync(join(dir, CACHE), 'utf8'))
    return j?.version === 1 && typeof j.files === 'object' ? j.files : {}
  } catch {
    return {}
  }
}

/**
 * Fingerprint of a data dir's content: its tables as ktp would write them (so whitespace and
 * order do not matter) and the bytes of every audio file. A command entry is fingerprinted by its
 * text (running it just to hash its output would cost as much as using it). A missing file is
 * fingerprinted as missing: that utterance fails later, with its id, where the audio is read.
 */
export async function dataDirFingerprint(dir: string, d: DataDir, opts: DataDirSourceOptions = {}): Promise<string> {
  const useCache = opts.hashCache ?? true
  const cache = useCache ? loadCache(dir) : {}
  const fresh: HashCache = {}
  // Recordings in JS sort() order, walked twice (hash, then fingerprint) rather than held: an
  // array of 48,000 ids and one of their hashes outlived V8's young generation (see TextTable).
  const recs = () => utf16SortedEntries(d.wav)
  // One hash per distinct file: a data dir may list the same recording under many ids (repeated
  // or perturbed copies), and reading it again gives the same bytes. The files are listed first
  // (in the order the recordings first name them), then hashed: walking all ids while files were
  // being read kept the reads' objects alive across more young-generation collections.
  const hashed = new Map<string, string>()
  for (const [, entry] of recs()) if (!isCommand(entry)) hashed.set(resolveEntry(entry), '')
  const hashRecording = async (path: string, buf: Buffer): Promise<string> => {
    let st: Stats
    try {
      st = statSync(path)
    } catch {
      return 'missing'
    }
    // a directory or a FIFO is no recording (hashing a FIFO would block): that utterance fails
    // later, with its id, where the audio is read
    if (!st.isFile()) return 'not-a-file'
    const c = cache[path]
    const hash = c && c.size === st.size && c.mtimeMs === st.mtimeMs ? c.hash : await hashFile(path, buf)
    fresh[path] = { size: st.size, mtimeMs: st.mtimeMs, hash }
    return hash
  }
  // HASH_JOBS readers take the files in turn
  const todo = hashed.keys()
  await Promise.all(
    Array.from({ length: HASH_JOBS }, async () => {
      const buf = Buffer.allocUnsafe(HASH_CHUNK)
      for (let r = todo.next(); !r.done; r = todo.next()) hashed.set(r.value, await hashRecording(r.value, buf))
    }),
  )
  // (a command entry is its own fingerprint)
  const hashOfEntry = (entry: string) => (isCommand(entry) ? `cmd:${entry}` : hashed.get(resolveEntry(entry))!)
  // (compared entry by entry: serialising both tables cost ~50 ms per run at 3,000 recordings)
  const same = (k: string) =>
    cache[k] !== undefined &&
    cache[k].size === fresh[k].size &&
    cache[k].mtimeMs === fresh[k].mtimeMs &&
    cache[k].hash === fresh[k].hash
  if (useCache && !Object.keys(fresh).every(same)) {
    // Best effort: a read-only data dir just means hashing again next time.
    try {
      writeFileAtomic(join(dir, CACHE), JSON.stringify({ version: 1, files: fresh }))
    } catch {
      /* not writable */
    }
  }
  // The same bytes as hashBytes(canonicalJson(formatDataDir(d)), canonicalJson([...recs()].map(([r, entry]) => [r, hash of entry]))),
  // fed line by line: the whole tables as one string (and its JSON copy) grew the peak of
  // `ktp features` with the size of the data dir.
  const h = new ChunkedHash()
  h.add('{')
  formatDataDirLines(d, (name, lines, first) => {
    h.add(`${first ? '' : ','}${JSON.stringify(name)}:"`)
    // JSON escapes character by character and the pieces (lines, or parts of a spk2utt line)
    // never split a surrogate pair: the escaped pieces concatenate to the escaped table
    for (const line of lines()) h.add(JSON.stringify(line).slice(1, -1))
    h.add('"')
  })
  h.add('}[')
  let i = 0
  for (const [rec, entry] of recs())
    h.add(`${i++ ? ',' : ''}[${JSON.stringify(rec)},${JSON.stringify(hashOfEntry(entry))}]`)
  h.add(']')
  return h.digest()
}

/** sha256 (32 hex) of many small strings, buffered so the hash is updated per ~64 kB, not per string. */
class ChunkedHash {
  private h = createHash('sha256')
  private parts: string[] = []
  private size = 0
  add(s: string): void {
    this.parts.push(s)
    this.size += s.length
    if (this.size >= 1 << 16) this.flush()
  }
  private flush(): void {
    this.h.update(this.parts.join(''))
    this.parts = []
    this.size = 0
  }
  digest(): string {
    this.flush()
    return this.h.digest('hex').slice(0, 32)
  }
}

export function manifestSchema(metadata: Record<string, string> = {}): Schema {
  return makeSchema('manifest', { metadata })
}

export function manifestBatch(schema: Schema, u: DataDirUtt): RecordBatch {
  return makeUttBatch(schema, {
    utt: u.utt,
    speaker: u.speaker,
    audio: u.audio,
    channel: null,
    start: u.start,
    end: u.end,
    text: u.text,
  })
}

/** Read a data dir as a StageInput of manifest@1 rows (validated; warnings returned for stderr). */
export async function dataDirInput(
  dir: string,
  opts: DataDirSourceOptions = {},
): Promise<StageInput & { warnings: string[]; data: DataDir }> {
  const { data, warnings } = readDataDir(dir)
  const fp = await dataDirFingerprint(dir, data, opts)
  const schema = manifestSchema({ [META.fingerprint]: fp })
  // Rows (and their ids) are made as they are pulled: all of them up front held ~150 bytes per
  // utterance for the whole run, beyond the tables they come from.
  return {
    name: dir,
    schema,
    fingerprint: fp,
    total: uttCount(data),
    uniqueIds: true,
    data,
    warnings,
    stream: () =>
      arrayStream(eachUttId(data)).map((utt) => {
        const u = dataDirUtt(data, utt)
        if (isCommand(u.audio) && !opts.allowCommands) throw refused(u.utt, u.audio, join(dir, 'wav.scp'))
        return manifestBatch(schema, u)
      }),
  }
}

export { readAudioBytes }

/** Whether `dir` looks like a Kaldi data dir (has wav.scp). */
export function isDataDir(dir: string): boolean {
  return existsSync(join(dir, 'wav.scp'))
}
