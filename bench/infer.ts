/**
 * `infer`: teacher inference to a top-k soft-target file, end to end. ktp: the CLI
 * `ktp infer --model M feats.arrow --top-k 32 --dtype f16 -o out.arrow` as a child process, timed
 * from spawn to exit (start-up, reading, splicing, forward, top-k, writing the Arrow file).
 * Reference: bench/infer_ref.py doing the same in PyTorch with the same weights and frames, also
 * timed from spawn to exit (interpreter and torch import included), best of 1 and 2 threads.
 * Model: the DESIGN §4 teacher (440 = 40×11 spliced in, 4×512 sigmoid, 1000 out), random weights.
 */
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { openArrow } from '../pipeline/io/arrow-source.js'
import { puller } from '../pipeline/io/pull.js'
import { getMatrix } from '../schemas/utterance.js'
import {
  type BenchLine,
  type HarnessOptions,
  PYTHON,
  PYTHON_INSTALL_HINT,
  TEACHER,
  ktp,
  pythonReference,
  refScript,
  round,
  runTimed,
  tmpDir,
  uttLengths,
  writeRandomFeatures,
  writeTeacher,
} from './common.js'

export interface InferBenchOptions {
  /** Frames of random 40-dim features (default 50,000; quick: 2,000). */
  frames?: number
  topK?: number
  /** Timed repetitions of each side, interleaved; the best counts (default 2; quick: 1). */
  reps?: number
}

interface RefOut {
  frames: number
  seconds: number
  threads: number
  torch: string
  first_top1: number[]
}

async function firstTop1(path: string): Promise<number[]> {
  const src = await openArrow(path, ['soft-topk'])
  try {
    const b = await puller(src.stream())()
    if (!b) return []
    const m = getMatrix<Uint16Array | Uint32Array>(b, 'ids')
    return Array.from({ length: m.frames }, (_, t) => m.data[t * m.width])
  } finally {
    await src.close()
  }
}

export async function benchInfer(h: HarnessOptions, o: InferBenchOptions = {}): Promise<BenchLine[]> {
  const dir = tmpDir('ktp-bench-infer-')
  const totalFrames = o.frames ?? (h.quick ? 500 : 50_000)
  const topK = o.topK ?? 32
  const reps = o.reps ?? 1
  const model = join(dir, 'teacher')
  await writeTeacher(model, 'model', h.quick ? { hidden: [32] } : {})
  const feats = join(dir, 'feats.arrow')
  const raw = join(dir, 'feats.f32')
  const lengths = uttLengths(totalFrames)
  const frames = writeRandomFeatures(feats, lengths, TEACHER.featDim, { rawPath: raw })
  h.log(
    `infer: ${frames} frames in ${lengths.length} utterances, teacher ${h.quick ? '440-32-1000 (quick)' : '440-4×512-1000'}, top-${topK} f16`,
  )

  const py = pythonReference()
  const withRef = h.reference && py.ok
  if (h.reference && !py.ok)
    h.log(`infer: Python reference skipped: ${py.detail}; install it with: ${PYTHON_INSTALL_HINT}`)

  const out = join(dir, 'soft.arrow')
  let ktpBest = Infinity
  let backend = '?'
  let ref: (RefOut & { wall: number }) | null = null
  const refByThreads: Record<string, number> = {}
  for (let r = 0; r < reps; r++) {
    const k = await ktp([
      'infer',
      '--model',
      model,
      feats,
      '--top-k',
      String(topK),
      '--dtype',
      'f16',
      '-o',
      out,
      '--force',
      '--quiet',
    ])
    backend = /tfjs backend (\w+)/.exec(k.stderr)?.[1] ?? backend
    ktpBest = Math.min(ktpBest, k.seconds)
    h.log(`infer: ktp ${k.seconds.toFixed(2)} s (${(frames / k.seconds).toFixed(0)} frames/s, backend ${backend})`)
    if (!withRef) continue
    for (const threads of [1, 2]) {
      const refOut = join(dir, `ref${threads}.bin`)
      const c = await runTimed(PYTHON, [refScript('infer_ref.py'), model, raw, refOut, String(threads), String(topK)], {
        captureStdout: true,
      })
      if (c.code !== 0) throw new Error(`infer_ref.py failed: ${c.stderr.trim().slice(-1500)}`)
      const j = JSON.parse(c.stdout.trim().split('\n').pop() ?? '{}') as RefOut
      if (j.frames !== frames) throw new Error(`infer_ref.py processed ${j.frames} frames, ktp ${frames}`)
      refByThreads[threads] = Math.max(refByThreads[threads] ?? 0, frames / c.seconds)
      h.log(`infer: PyTorch ${threads} thread(s) ${c.seconds.toFixed(2)} s wall, ${j.seconds.toFixed(2)} s in-script`)
      if (!ref || c.seconds < ref.wall) ref = { ...j, wall: c.seconds }
    }
  }
  const ktpFps = frames / ktpBest
  const line: BenchLine = {
    name: 'infer',
    ktp: round(ktpFps),
    reference: ref ? round(frames / ref.wall) : null,
    unit: 'frames/s',
    ratio: ref ? round(ktpFps / (frames / ref.wall)) : null,
    frames,
    top_k: topK,
    backend,
    ktp_seconds: round(ktpBest),
    output_bytes_per_frame: round(statSync(out).size / frames),
  }
  if (ref) {
    const mine = await firstTop1(out)
    const same = mine.filter((v, i) => v === ref!.first_top1[i]).length
    Object.assign(line, {
      reference_seconds: round(ref.wall),
      reference_in_script_seconds: round(ref.seconds),
      reference_threads: ref.threads,
      reference_by_threads: Object.fromEntries(Object.entries(refByThreads).map(([k, v]) => [k, round(v)])),
      top1_agreement_first_utt: round(same / Math.max(1, mine.length)),
      torch: ref.torch,
    })
  } else if (!h.reference) {
    line.reference_note = 'skipped (--no-reference)'
  } else {
    line.reference_note = `unavailable: ${py.detail}`
  }
  return [line]
}
