/**
 * Feature-extraction speed against the reference, torchaudio.compliance.kaldi.fbank
 * (bench/features_ref.py, one thread), 40 mel bins, dither 0, over every WAV in a folder (default:
 * the bundled FSDD recordings, all 3,000). Prints one JSON line per measurement,
 * {"name", "ktp", "reference", "unit": "s", "ratio": reference / ktp, "frames"}:
 *   features              ktp's read+decode+fbank loop on one thread, the same loop torchaudio runs
 *                         (warm-up over the first 50 files untimed; start-up not timed)
 *   features-stage-jobs1  `ktp features DATADIR -o FILE --jobs 1`: the real stage end to end —
 *   features-stage-jobs2  process start, data dir, workers, Arrow encoding, the resumable writer
 *                         and its fsync'd final file — against the same torchaudio loop time
 * Every figure is the fastest of `repeats` runs (noise on a shared box only adds). Needs the build:
 *   npx tsc -p . && node dist/bench/features.js
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { decodeAudio } from '../stages/audio/decode.js'
import { computeFbank, parseFbankOptions, type FbankOptions } from '../stages/dsp/kaldi-features.js'

export interface BenchOptions {
  /** Folder of WAV files (default fixtures/fsdd/recordings). */
  dir?: string
  numMelBins?: number
  /** Timed passes per side; the fastest counts (default 3). */
  repeats?: number
  /** Python with torch + torchaudio (default the Debian /usr/bin/python3). */
  python?: string
}

export interface BenchLine {
  name: string
  /** seconds */
  ktp: number
  reference: number
  unit: 's'
  /** reference / ktp: how many times faster ktp is. */
  ratio: number
  frames: number
}

/** The project root, found from this file whether it runs as .ts or from dist/. */
function projectRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(d, 'package.json')) && dirname(d) !== d) d = dirname(d)
  return d
}

function runKtp(files: string[], optsFor: (rate: number) => FbankOptions): number {
  let frames = 0
  for (const f of files) {
    const audio = decodeAudio(readFileSync(f), { name: f })
    frames += computeFbank(audio, optsFor(audio.sampleRate)).numFrames
  }
  return frames
}

function fastest(repeats: number, fn: () => void): number {
  let best = Infinity
  for (let r = 0; r < repeats; r++) {
    const t0 = process.hrtime.bigint()
    fn()
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9)
  }
  return best
}

/** The files as a Kaldi data dir (ids = file names) for the stage runs. */
function dataDirOf(files: string[]): string {
  const d = mkdtempSync(join(tmpdir(), 'ktp-bench-features-'))
  const ids = files.map((f) => f.replace(/^.*\//, '').replace(/\.wav$/, ''))
  const order = ids.map((id, i) => [id, files[i]] as const).sort((a, b) => (a[0] < b[0] ? -1 : 1))
  writeFileSync(join(d, 'wav.scp'), order.map(([id, f]) => `${id} ${f}\n`).join(''))
  writeFileSync(join(d, 'utt2spk'), order.map(([id]) => `${id} ${id}\n`).join(''))
  return d
}

export async function benchFeatures(opts: BenchOptions = {}): Promise<BenchLine[]> {
  const root = projectRoot()
  const dir = opts.dir ?? join(root, 'fixtures/fsdd/recordings')
  const bins = opts.numMelBins ?? 40
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.wav'))
    .sort()
    .map((f) => join(dir, f))
  // One options object per sample rate, so the plan (window, mel banks, FFT) is built once.
  const byRate = new Map<number, FbankOptions>()
  const optsFor = (rate: number): FbankOptions => {
    let o = byRate.get(rate)
    if (!o) {
      o = parseFbankOptions({ sampleFrequency: rate, numMelBins: bins, dither: 0 })
      byRate.set(rate, o)
    }
    return o
  }
  const repeats = opts.repeats ?? 3
  runKtp(files.slice(0, 50), optsFor)
  let frames = 0
  const ktpS = fastest(repeats, () => {
    frames = runKtp(files, optsFor)
  })

  const out = execFileSync(
    opts.python ?? '/usr/bin/python3',
    [join(root, 'bench/features_ref.py'), dir, String(bins), String(repeats)],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  )
  const ref = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { seconds: number; frames: number }
  if (ref.frames !== frames) throw new Error(`frame counts differ: ktp ${frames}, reference ${ref.frames}`)
  const line = (name: string, s: number): BenchLine => ({
    name,
    ktp: s,
    reference: ref.seconds,
    unit: 's',
    ratio: ref.seconds / s,
    frames,
  })
  const lines = [line('features', ktpS)]

  // The real stage. The first run is untimed: it hashes the audio for the data dir's fingerprint
  // (cached afterwards, as in any rerun) and warms the page cache.
  const data = dataDirOf(files)
  const feats = join(data, 'feats.arrow')
  const cli = join(root, 'dist/pipeline/cli/main.js')
  const stage = (jobs: number) =>
    execFileSync(
      process.execPath,
      [
        cli,
        'features',
        data,
        '--num-mel-bins',
        String(bins),
        '--dither',
        '0',
        '--sample-frequency',
        String(readRate(files[0])),
        '--jobs',
        String(jobs),
        '-o',
        feats,
        '--force',
        '--quiet',
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    )
  try {
    stage(1)
    for (const jobs of [1, 2])
      lines.push(
        line(
          `features-stage-jobs${jobs}`,
          fastest(repeats, () => stage(jobs)),
        ),
      )
  } finally {
    rmSync(data, { recursive: true, force: true })
  }
  return lines
}

function readRate(file: string): number {
  return decodeAudio(readFileSync(file), { name: file }).sampleRate
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchFeatures().then(
    (lines) => {
      for (const l of lines) process.stdout.write(`${JSON.stringify(l)}\n`)
    },
    (e: unknown) => {
      process.stderr.write(`bench failed: ${String(e)}\n`)
      process.exitCode = 1
    },
  )
}
