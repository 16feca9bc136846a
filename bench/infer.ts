/**
 * `infer` / `end-to-end`: teacher inference to a top-32 f16 soft-target file, whole process against
 * whole process, one thread each. ktp: `ktp infer --model M feats.arrow --top-k 32 --dtype f16 -o
 * out.arrow` (start-up, Arrow reading, splicing, forward, top-k, Arrow writing, fsync). References:
 * bench/infer_ref.py (PyTorch, 1 thread, OpenBLAS/OpenMP pinned; same weights, same frames, the
 * same Arrow record batches out) and, when onnxruntime-node is installed, ONNX Runtime (CPU, 1
 * intra-op thread) through `ktp infer --backend onnxruntime` on the same model. `reference` is the
 * best of them (median wall of each); every side's figures are in the line. Repetitions are
 * interleaved; outputs are read back and compared (utterances, frames, top-1 agreement).
 * Model: the DESIGN §4 teacher (440 = 40×11 spliced in, 4×512 sigmoid, 1000 out), random weights.
 */
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { tableFromIPC } from 'apache-arrow'
import { onnxRuntimeAvailable } from '../stages/nn/index.js'
import { inferSchema } from '../stages/infer/stage.js'
import type { ModelMeta } from '../stages/train/model-store.js'
import {
  type BenchLine,
  CLI,
  type HarnessOptions,
  PYTHON,
  PYTHON_INSTALL_HINT,
  type Sample,
  TEACHER,
  interleave,
  mustRun,
  pythonReference,
  refEnv,
  refScript,
  round,
  runMeta,
  spreadOf,
  timeFields,
  tmpDir,
  uttLengths,
  writeRandomFeatures,
  writeTeacher,
} from './common.js'
import { schemaMessage } from './features.js'

export interface InferBenchOptions {
  /** Frames of random 40-dim features (default 200,000; quick: 500). */
  frames?: number
  topK?: number
  /** Interleaved repetitions per side (default 3; quick: 1). */
  reps?: number
}

/** Utterances, frames and the top-1 class of every frame of a soft-topk Arrow file (file or stream). */
function top1Of(path: string): { utts: number; frames: number; top1: Uint32Array } {
  const t = tableFromIPC(readFileSync(path))
  const ids: number[] = []
  for (const b of t.batches) {
    const list = b.getChild('ids')!.data[0]
    const k = (list.children[0].type as unknown as { listSize: number }).listSize
    const vals = list.children[0].children[0].values as Uint16Array
    const off = list.valueOffsets
    for (let f = off[0]; f < off[list.length]; f++) ids.push(vals[f * k])
  }
  return { utts: t.numRows, frames: ids.length, top1: Uint32Array.from(ids) }
}

function agreement(a: Uint32Array, b: Uint32Array): number {
  let same = 0
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++
  return same / Math.max(1, a.length)
}

export async function benchInfer(h: HarnessOptions, o: InferBenchOptions = {}): Promise<BenchLine[]> {
  const dir = tmpDir('ktp-bench-infer-')
  const totalFrames = o.frames ?? (h.quick ? 500 : 200_000)
  const topK = o.topK ?? 32
  const reps = o.reps ?? h.reps ?? (h.quick ? 1 : 3)
  const model = join(dir, 'teacher')
  await writeTeacher(model, 'model', h.quick ? { hidden: [32] } : {})
  const feats = join(dir, 'feats.arrow')
  const raw = join(dir, 'feats.f32')
  const lengths = uttLengths(totalFrames)
  const frames = writeRandomFeatures(feats, lengths, TEACHER.featDim, { rawPath: raw })
  const meta = JSON.parse(readFileSync(join(model, 'ktp.json'), 'utf8')) as ModelMeta
  const schema = schemaMessage(
    join(dir, 'schema.bin'),
    inferSchema(meta, { topK, dtype: 'f16' }, 'bench-random-features'),
  )
  h.log(
    `infer: ${frames} frames in ${lengths.length} utterances, teacher ${h.quick ? '440-32-1000 (quick)' : '440-4×512-1000'}, top-${topK} f16`,
  )
  const py = pythonReference()
  const withTorch = h.reference && py.ok
  if (h.reference && !py.ok) h.log(`infer: PyTorch reference skipped: ${py.detail}; install: ${PYTHON_INSTALL_HINT}`)
  const ort = h.reference ? await onnxRuntimeAvailable() : { ok: false, detail: 'skipped (--no-reference)' }
  if (h.reference && !ort.ok) h.log(`infer: ONNX Runtime side skipped: ${ort.detail}`)

  const ktpArgs = (backend: string, out: string) => [
    CLI,
    'infer',
    '--model',
    model,
    feats,
    '--backend',
    backend,
    '--top-k',
    String(topK),
    '--dtype',
    'f16',
    '-o',
    out,
    '--force',
    '--quiet',
  ]
  const outs = { ktp: join(dir, 'soft.arrow'), torch: join(dir, 'soft-torch.arrows'), ort: join(dir, 'soft-ort.arrow') }
  const sides: Array<{ name: 'ktp' | 'torch' | 'ort'; run: () => Promise<Sample> }> = [
    { name: 'ktp', run: () => mustRun('ktp infer', process.execPath, ktpArgs('wasm', outs.ktp)) },
  ]
  if (withTorch)
    sides.push({
      name: 'torch',
      run: () =>
        mustRun('infer_ref.py', PYTHON, [refScript('infer_ref.py'), model, raw, outs.torch, schema, String(topK)], {
          env: refEnv(1),
          captureStdout: true,
        }),
    })
  if (ort.ok)
    sides.push({
      name: 'ort',
      run: () =>
        mustRun('ktp infer --backend onnxruntime', process.execPath, ktpArgs('onnxruntime', outs.ort), {
          env: { KTP_ORT_THREADS: '1' },
        }),
    })
  const samples = await interleave(
    reps,
    sides.map((s) => s.run),
  )
  const by = Object.fromEntries(sides.map((s, i) => [s.name, samples[i]])) as Record<string, Sample[] | undefined>
  const wall = (xs: Sample[]) => spreadOf(xs.map((x) => x.wall)).median
  const mine = top1Of(outs.ktp)
  const extra: Record<string, unknown> = {}
  let best: { name: string; fps: number } | null = null
  for (const s of sides.slice(1)) {
    const xs = by[s.name]!
    const theirs = top1Of(outs[s.name])
    if (theirs.utts !== mine.utts || theirs.frames !== mine.frames)
      throw new Error(
        `infer: ${s.name} wrote ${theirs.utts} utts / ${theirs.frames} frames, ktp ${mine.utts} / ${mine.frames}`,
      )
    const fps = frames / wall(xs)
    Object.assign(extra, timeFields(s.name, xs), {
      [`${s.name}_fps`]: round(fps),
      [`${s.name}_top1_agreement`]: round(agreement(mine.top1, theirs.top1)),
    })
    if (!best || fps > best.fps) best = { name: s.name, fps }
  }
  const kf = frames / wall(by.ktp!)
  const line: BenchLine = {
    name: 'infer',
    variant: 'end-to-end',
    ktp: round(kf),
    reference: best ? round(best.fps) : null,
    unit: 'frames/s',
    ratio: best ? round(kf / best.fps) : null,
    goal: 'ratio >= 0.7',
    reference_is: best
      ? best.name === 'torch'
        ? `PyTorch ${py.detail} (bench/infer_ref.py, 1 thread)`
        : 'ONNX Runtime CPU, 1 thread (ktp infer --backend onnxruntime)'
      : null,
    references: sides.slice(1).map((s) => s.name),
    onnxruntime: ort.ok ? ort.detail : `absent: ${ort.detail}`,
    frames,
    utterances: lengths.length,
    top_k: topK,
    ktp_backend: 'wasm',
    output_bytes_per_frame: round(statSync(outs.ktp).size / frames),
    reference_input_note:
      'PyTorch reads raw float32 frames (no Arrow reader in Debian Python): cheaper than Arrow decoding',
    ...timeFields('ktp', by.ktp!),
    ...extra,
    ...runMeta({ ktp: 1, reference: best ? 1 : null }),
  }
  return [line]
}
