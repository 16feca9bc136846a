/**
 * `features` / `end-to-end`: `ktp features DATADIR -o F --jobs 1` as a whole process against
 * bench/features_ref.py as a whole process (interpreter start, torch + torchaudio import, the same
 * data dir, torchaudio.compliance.kaldi.fbank, the same Arrow record batches written, fsync), one
 * thread each (the reference's BLAS/OpenMP pools pinned), 40 mel bins, dither 0, over every WAV in
 * a folder (default: the bundled FSDD recordings, all 3,000). Repetitions are interleaved; the line
 * gives the median and spread of wall and CPU time of both sides, `ktp`/`reference` in frames per
 * wall second (medians). The reference's output is read back with apache-arrow and checked against
 * ktp's (utterances, frames, values), so both sides provably did the same work.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tableFromIPC } from 'apache-arrow'
import { BatchEncoder } from '../pipeline/io/arrow-encoder.js'
import { makeSchema } from '../schemas/kinds.js'
import { decodeAudio } from '../stages/audio/decode.js'
import {
  type BenchLine,
  CLI,
  type HarnessOptions,
  PYTHON,
  ROOT,
  interleave,
  mustRun,
  refEnv,
  refScript,
  round,
  runMeta,
  spreadOf,
  timeFields,
  tmpDir,
} from './common.js'

export interface FeaturesBenchOptions {
  /** Folder of WAV files (default fixtures/fsdd/recordings). */
  dir?: string
  numMelBins?: number
  /** Interleaved timed repetitions per side (default 3; quick 1). */
  reps?: number
  /** Use only the first N files (quick runs). */
  limit?: number
}

/** The files as a Kaldi data dir (ids = file names, sorted). */
function dataDirOf(files: string[]): string {
  const d = tmpDir('ktp-bench-features-')
  const rows = files.map((f) => [f.replace(/^.*\//, '').replace(/\.wav$/, ''), f] as const)
  rows.sort((a, b) => (a[0] < b[0] ? -1 : 1))
  writeFileSync(join(d, 'wav.scp'), rows.map(([id, f]) => `${id} ${f}\n`).join(''))
  writeFileSync(join(d, 'utt2spk'), rows.map(([id]) => `${id} ${id}\n`).join(''))
  return d
}

/** The schema message of a ktp features file (bins wide), for the Python writer. */
export function schemaMessage(path: string, schema: ReturnType<typeof makeSchema>): string {
  writeFileSync(path, Buffer.concat(new BatchEncoder(schema, 'stream').begin()))
  return path
}

/** Utterances, frames and a value checksum of an Arrow features file (file or stream format). */
function summarise(path: string): { utts: number; frames: number; sum: number } {
  const t = tableFromIPC(readFileSync(path))
  let frames = 0
  let sum = 0
  for (const b of t.batches) {
    const list = b.getChild('feats')!.data[0]
    const off = list.valueOffsets
    frames += off[list.length] - off[0]
    const vals = list.children[0].children[0].values as Float32Array
    for (let i = 0; i < vals.length; i += 97) sum += vals[i]
  }
  return { utts: t.numRows, frames, sum }
}

export async function benchFeatures(h: HarnessOptions, o: FeaturesBenchOptions = {}): Promise<BenchLine[]> {
  const dir = o.dir ?? join(ROOT, 'fixtures/fsdd/recordings')
  const bins = o.numMelBins ?? 40
  const reps = o.reps ?? h.reps ?? (h.quick ? 1 : 3)
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.wav'))
    .sort()
    .slice(0, o.limit ?? (h.quick ? 60 : undefined))
    .map((f) => join(dir, f))
  const rate = decodeAudio(readFileSync(files[0]), { name: files[0] }).sampleRate
  const data = dataDirOf(files)
  const ktpOut = join(data, 'feats.arrow')
  const refOut = join(data, 'feats-ref.arrows')
  const schema = schemaMessage(join(data, 'schema.bin'), makeSchema('features', { widths: { feats: bins } }))
  const ktpArgs = [
    CLI,
    'features',
    data,
    '--num-mel-bins',
    String(bins),
    '--dither',
    '0',
    '--sample-frequency',
    String(rate),
    '--jobs',
    '1',
    '-o',
    ktpOut,
    '--force',
    '--quiet',
  ]
  const refArgs = [refScript('features_ref.py'), data, refOut, schema, String(bins)]
  const env = refEnv(1)
  try {
    // Untimed warm-up of both: ktp hashes the audio once for the data dir's fingerprint (cached, as
    // in any rerun); both warm the page cache.
    await mustRun('ktp features', process.execPath, ktpArgs)
    if (h.reference) await mustRun('features_ref.py', PYTHON, refArgs, { env })
    h.log(`features: ${files.length} files, ${reps} interleaved repetitions`)
    const sides = [() => mustRun('ktp features', process.execPath, ktpArgs)]
    if (h.reference) sides.push(() => mustRun('features_ref.py', PYTHON, refArgs, { env, captureStdout: true }))
    const [k, r] = await interleave(reps, sides)
    const mine = summarise(ktpOut)
    const line: BenchLine = {
      name: 'features',
      variant: 'end-to-end',
      ktp: null,
      reference: null,
      unit: 'frames/s',
      ratio: null,
      goal: 'ratio >= 1.5',
      frames: mine.frames,
      utterances: mine.utts,
      files: files.length,
      ktp_command: `ktp features DATADIR --num-mel-bins ${bins} --dither 0 --sample-frequency ${rate} --jobs 1 -o F`,
      reference_command: `python3 bench/features_ref.py DATADIR F SCHEMA ${bins} (torchaudio ${'kaldi.fbank'}, Arrow stream out)`,
      ...timeFields('ktp', k),
      ...runMeta({ ktp: 1, reference: h.reference ? 1 : null }),
    }
    const kWall = spreadOf(k.map((s) => s.wall)).median
    line.ktp = round(mine.frames / kWall)
    if (r) {
      const theirs = summarise(refOut)
      if (theirs.utts !== mine.utts || theirs.frames !== mine.frames)
        throw new Error(
          `features: reference wrote ${theirs.utts} utterances / ${theirs.frames} frames, ktp ${mine.utts} / ${mine.frames}`,
        )
      const rWall = spreadOf(r.map((s) => s.wall)).median
      Object.assign(line, timeFields('reference', r), {
        reference: round(mine.frames / rWall),
        ratio: round(rWall / kWall),
        cpu_ratio: round(spreadOf(r.map((s) => s.cpu)).median / spreadOf(k.map((s) => s.cpu)).median),
        checksum_rel_diff: round(Math.abs(theirs.sum - mine.sum) / Math.max(1e-9, Math.abs(mine.sum)), 2),
      })
    } else line.reference_note = 'skipped (--no-reference)'
    return [line]
  } finally {
    rmSync(data, { recursive: true, force: true })
  }
}
