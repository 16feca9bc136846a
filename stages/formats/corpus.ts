import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { KtpError } from '../../schemas/errors.js'
import type { CtmSegment } from './ctm.js'
import type { DataDir, DataDirMaps } from './datadir-io.js'
import { checkId } from './kaldi-tables.js'

/**
 * What every corpus reader of `ktp prepare` returns: a data dir (no segments: one recording per
 * utterance), optional alignments as CTM, and the corpus' own train/test division if it has one.
 */
export interface Corpus<D extends DataDir = DataDir> {
  data: D
  /** Extra CTM files by name (e.g. phones.ctm from TIMIT .phn). */
  ctm: Record<string, Map<string, CtmSegment[]>>
  /** utt → 'train' | 'test' when the corpus itself says (TIMIT's TRAIN/TEST folders). */
  division: Map<string, 'train' | 'test'> | null
  /** Things skipped or odd, one line each, for stderr. */
  warnings: string[]
}

export function emptyCorpus(): Corpus<DataDirMaps> {
  return {
    data: { wav: new Map(), segments: null, utt2spk: new Map(), text: new Map(), utt2dur: new Map() },
    ctm: {},
    division: null,
    warnings: [],
  }
}

/** Add one utterance (its own recording). Duplicate ids are an error naming both sources. */
export function addUtt(
  c: Corpus<DataDirMaps>,
  u: { utt: string; speaker: string; audio: string; text: string | null; dur: number | null },
  source: string,
): void {
  checkId(u.utt, 'utterance id', source)
  checkId(u.speaker, 'speaker id', source)
  const d = c.data
  if (d.wav.has(u.utt))
    throw new KtpError('duplicate-id', `${source}: utterance id '${u.utt}' already used by ${d.wav.get(u.utt)}`)
  d.wav.set(u.utt, u.audio)
  d.utt2spk.set(u.utt, u.speaker)
  if (u.text !== null) d.text!.set(u.utt, u.text)
  if (u.dur !== null) d.utt2dur!.set(u.utt, u.dur)
}

/** Every file under `dir` (recursively, following no symlinked dirs), sorted for determinism. */
export function walkFiles(dir: string): string[] {
  const out: string[] = []
  const visit = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(d, e.name)
      if (e.isDirectory()) visit(p)
      else if (e.isFile() || e.isSymbolicLink()) out.push(p)
    }
  }
  visit(dir)
  return out
}
