/**
 * `memory`: does the front end stream? Peak resident set size of every process of
 *
 *   ktp features DATA -o - | ktp cmvn apply --stats S - | ktp splice --context 5 \
 *     | ktp infer --model M - --top-k 32 -o out.arrow
 *
 * over FSDD repeated 1× and 16× (the same run) (a Kaldi data dir listing every recording N times under
 * distinct utterance ids; the audio is not copied). Each scale is a first run on its data dir: no
 * audio-hash cache, so features hashes the 3,000 recordings at either scale. A streaming pipe's peaks do not grow with the
 * input: the goal is the 16× peak within 1.2× of the 1× peak, for every process. Peaks come from
 * GNU time (`/usr/bin/time -f %M`, the kernel's ru_maxrss of each process). M is a small random
 * teacher (440-256-1000: the DESIGN §4 one would make the 16× run take half an hour on wasm, and
 * the model's size is a constant in the peak, not a growth) on the spliced frames. Top-32 output keeps
 * the file small (dense f16 at 16× would be ~4 GB); the output format does not change the streaming.
 *
 * One line per scale above 1× (`ktp` = the largest per-process peak, bytes; `ratio` = 1× peak / N× peak,
 * so 1 means flat and the goal is ≥ 1/1.2), with each process's peak in `peaks`.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  type BenchLine,
  CLI,
  type HarnessOptions,
  ROOT,
  hasGnuTime,
  ktp,
  round,
  runMeta,
  tmpDir,
  writeTeacher,
} from './common.js'

export interface MemoryBenchOptions {
  /** Repetitions of the corpus (default 1, 16; quick: 1, 2). */
  scales?: number[]
  /** Recordings of FSDD to use (default all 3000; quick: 40). */
  recordings?: number
  /** Hidden layers of the teacher (default one of 256: the pipe's speed, not its memory, depends on it). */
  hidden?: number[]
}

const STAGES = ['features', 'cmvn', 'splice', 'infer'] as const

/** A Kaldi data dir listing `recs` (id → wav path, speaker) `times` times, ids speaker-prefixed and sorted. */
function repeatedDataDir(dir: string, recs: { utt: string; spk: string; wav: string }[], times: number): void {
  mkdirSync(dir, { recursive: true })
  const rows: { utt: string; spk: string; wav: string }[] = []
  for (let r = 0; r < times; r++)
    for (const x of recs) rows.push({ ...x, utt: `${x.spk}-r${String(r).padStart(2, '0')}-${x.utt}` })
  rows.sort((a, b) => (a.utt < b.utt ? -1 : a.utt > b.utt ? 1 : 0))
  writeFileSync(join(dir, 'wav.scp'), rows.map((x) => `${x.utt} ${x.wav}\n`).join(''))
  writeFileSync(join(dir, 'utt2spk'), rows.map((x) => `${x.utt} ${x.spk}\n`).join(''))
  const bySpk = new Map<string, string[]>()
  for (const x of rows) bySpk.set(x.spk, [...(bySpk.get(x.spk) ?? []), x.utt])
  writeFileSync(
    join(dir, 'spk2utt'),
    [...bySpk.keys()]
      .sort()
      .map((s) => `${s} ${bySpk.get(s)!.join(' ')}\n`)
      .join(''),
  )
}

function fsddRecordings(limit: number): { utt: string; spk: string; wav: string }[] {
  const dir = join(ROOT, 'fixtures/fsdd/recordings')
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.wav'))
    .sort()
  // Spread a limited selection over all speakers and digits (every k-th file).
  const step = Math.max(1, Math.floor(files.length / Math.min(limit, files.length)))
  const picked = files.filter((_, i) => i % step === 0).slice(0, limit)
  return picked.map((f) => {
    const [digit, spk, take] = f.replace(/\.wav$/, '').split('_')
    return { utt: `${digit}-${take}`, spk, wav: join(dir, f) }
  })
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

export async function benchMemory(h: HarnessOptions, o: MemoryBenchOptions = {}): Promise<BenchLine[]> {
  if (!hasGnuTime) {
    return [
      {
        name: 'memory',
        ktp: null,
        reference: null,
        unit: 'bytes',
        ratio: null,
        note: 'not available: needs GNU time (/usr/bin/time; apt-get install time)',
      },
    ]
  }
  const dir = tmpDir('ktp-bench-mem-')
  const scales = o.scales ?? (h.quick ? [1, 2] : [1, 16])
  const recs = fsddRecordings(o.recordings ?? (h.quick ? 40 : 3000))
  const model = join(dir, 'teacher')
  await writeTeacher(model, 'input', { hidden: o.hidden ?? [256] })
  // CMVN statistics from the 1× features (not timed, not measured), computed from a data dir of
  // their own: features leaves an audio-hash cache in the data dir it reads, and the measured runs
  // must all start alike, as a first run (the ×1 run once started with the cache the ×16 run lacked).
  repeatedDataDir(join(dir, 'stats-data'), recs, 1)
  const feats1 = join(dir, 'feats1.arrow')
  await ktp(['features', join(dir, 'stats-data'), '--num-mel-bins', '40', '--dither', '0', '--quiet', '-o', feats1])
  const stats = join(dir, 'cmvn.json')
  await ktp(['cmvn', 'compute', feats1, '-o', stats])

  const node = process.execPath
  const lines: BenchLine[] = []
  let base: Record<string, number> | null = null
  let baseInfo: Record<string, unknown> = {}
  for (const n of scales) {
    const data = join(dir, `data${n}`)
    repeatedDataDir(data, recs, n)
    const out = join(dir, `soft${n}.arrow`)
    const rss = (s: string) => join(dir, `rss${n}.${s}`)
    const T = (s: string) => `/usr/bin/time -o ${q(rss(s))} -f %M ${q(node)} ${q(CLI)}`
    const cmd = [
      `${T('features')} features ${q(data)} --num-mel-bins 40 --dither 0 --quiet -o -`,
      `${T('cmvn')} cmvn apply --stats ${q(stats)} - --quiet`,
      `${T('splice')} splice --context 5 --quiet`,
      `${T('infer')} infer --model ${q(model)} - --top-k 32 --quiet --force -o ${q(out)}`,
    ].join(' | ')
    h.log(`memory ×${n}: ${recs.length * n} utterances through features | cmvn | splice | infer`)
    const t0 = Date.now()
    const r = spawnSync('bash', ['-o', 'pipefail', '-c', cmd], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 26 })
    const seconds = (Date.now() - t0) / 1000
    if (r.status !== 0)
      throw new Error(`memory ×${n}: the pipe failed (exit ${r.status}): ${r.stderr.trim().slice(-1500)}`)
    const peaks: Record<string, number> = {}
    for (const s of STAGES) peaks[s] = Number(readFileSync(rss(s), 'utf8').trim().split('\n').pop()) * 1024
    const info = spawnSync(node, [CLI, 'info', out], { encoding: 'utf8' })
    const frames = Number(/frames\s+(\d+)/.exec(info.stdout)?.[1] ?? NaN)
    const utts = Number(/utterances\s+(\d+)/.exec(info.stdout)?.[1] ?? NaN)
    if (utts !== recs.length * n)
      throw new Error(`memory ×${n}: ${utts} utterances came out of the pipe, expected ${recs.length * n}`)
    if (!base) {
      // the ×1 run is the base of the growth, reported inside the larger scales' lines
      base = peaks
      baseInfo = { frames, seconds: round(seconds) }
      h.log(`memory ×${n}: ${frames} frames in ${seconds.toFixed(1)} s (base)`)
      continue
    }
    const worst = Math.max(...STAGES.map((s) => peaks[s]))
    const growth = Object.fromEntries(STAGES.map((s) => [s, round(peaks[s] / base![s])]))
    const maxGrowth = Math.max(...STAGES.map((s) => peaks[s] / base![s]))
    lines.push({
      name: 'memory',
      variant: `x${n}`,
      scale: n,
      ktp: worst,
      reference: null,
      unit: 'bytes',
      ratio: round(1 / maxGrowth),
      ratio_of: 'largest per-process peak at 1× / at this scale (goal >= 0.83: within 1.2×)',
      peaks,
      base_peaks: base,
      base: { scale: scales[0], ...baseInfo },
      growth,
      utterances: utts,
      frames,
      seconds: round(seconds),
      frames_per_second: round(frames / seconds),
      goal: 'growth <= 1.2 at x16 (ratio >= 0.83)',
      ...runMeta({ ktp: 1, reference: null }),
    })
    h.log(
      `memory ×${n}: ${frames} frames in ${seconds.toFixed(1)} s; peaks MB ${STAGES.map((s) => `${s} ${(peaks[s] / 2 ** 20).toFixed(0)}`).join(', ')}`,
    )
  }
  return lines
}
