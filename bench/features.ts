/**
 * Feature-extraction speed against the reference: ktp's fbank vs torchaudio.compliance.kaldi.fbank
 * (bench/features_ref.py), both single-threaded, 40 mel bins, dither 0, over every WAV in a folder
 * (default: the bundled FSDD recordings). Both sides time the same loop — read the file, decode,
 * compute features — after an untimed warm-up over the first 50 files; start-up is not timed. Each
 * side runs the loop `repeats` times and reports its fastest pass (noise on a shared box only adds).
 *
 *   npx tsc -p . && node dist/bench/features.js        # prints one JSON line, or without a build:
 *   node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/features.ts
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
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

export interface BenchResult {
  ktp_s: number
  reference_s: number
  frames: number
  /** reference_s / ktp_s: how many times faster ktp is. */
  ratio: number
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

export async function benchFeatures(opts: BenchOptions = {}): Promise<BenchResult> {
  const root = projectRoot()
  const dir = opts.dir ?? join(root, 'fixtures/fsdd/recordings')
  const bins = opts.numMelBins ?? 40
  const files = readdirSync(dir).filter((f) => f.endsWith('.wav')).sort().map((f) => join(dir, f))
  // One options object per sample rate, so the plan (window, mel banks, FFT) is built once.
  const byRate = new Map<number, FbankOptions>()
  const optsFor = (rate: number): FbankOptions => {
    let o = byRate.get(rate)
    if (!o) byRate.set(rate, (o = parseFbankOptions({ sampleFrequency: rate, numMelBins: bins, dither: 0 })))
    return o
  }
  const repeats = opts.repeats ?? 3
  runKtp(files.slice(0, 50), optsFor)
  let ktp_s = Infinity
  let frames = 0
  for (let r = 0; r < repeats; r++) {
    const t0 = process.hrtime.bigint()
    frames = runKtp(files, optsFor)
    ktp_s = Math.min(ktp_s, Number(process.hrtime.bigint() - t0) / 1e9)
  }

  const out = execFileSync(opts.python ?? '/usr/bin/python3', [join(root, 'bench/features_ref.py'), dir, String(bins), String(repeats)],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  const ref = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { seconds: number; frames: number }
  if (ref.frames !== frames) throw new Error(`frame counts differ: ktp ${frames}, reference ${ref.frames}`)
  return { ktp_s, reference_s: ref.seconds, frames, ratio: ref.seconds / ktp_s }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchFeatures().then(
    (r) => process.stdout.write(JSON.stringify(r) + '\n'),
    (e: unknown) => { process.stderr.write(`bench failed: ${String(e)}\n`); process.exitCode = 1 },
  )
}
