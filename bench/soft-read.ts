/**
 * `soft-read`: how fast a student's data feeder turns stored teacher output into training batches.
 * The same teacher output (C = 1000 classes, log-probabilities at T = 1) is written in five storage
 * modes — dense f32, dense f16, top-8/32/128 f16 — with the production schema (stages/infer.ts
 * inferSchema); then, per mode, the feeder a student uses (stages/train/speech-source.ts):
 * stages/train/corpus.ts readCorpus (features joined with soft targets, streamed from the files)
 * into stages/train/chunk-batches.ts chunkBatches (the recurrent student's default: 16 chunks × 20
 * frames, buffer 4096 chunks), targets at T = 2 — sparse (k ids, k probabilities, the tail's
 * per-class probability) for top-k files, dense [B, L, C] for dense files — batch arrays reused.
 * Timed from open to the last batch, best of `reps` after a warm-up. Reported per mode: frames/s
 * (`ktp`) and bytes per frame of the soft-target file; `reference` is apache-arrow's own
 * tableFromIPC read of the same files (no targets built), `ratio` ktp over it, `goal_ratio` ktp
 * over the goal (1M frames/s for top-k, 300k for dense). The harness measures the two storage modes
 * of the issue-16 table (dense-f16, top8-f16); SOFT_MODES lists all five for writeSoftFiles.
 *
 * Extra fields (same data): `frames_fps` the DNN student's feeder (frameBatches, batch 256, ±5
 * splice, buffer 100k frames) end to end; `dense_targets_fps` (top-k modes) the chunk feeder
 * building dense targets from the top-k file as before sparse targets (sparse: false);
 * `batching_fps` chunkBatches alone over utterances already in memory (no I/O; `dense_batching_fps`
 * the same building dense targets from the top-k rows); `read_fps`
 * readCorpus alone; `targets_fps` the per-frame target computation alone (topkTargetsAt or
 * softTargetsAt into one reused buffer).
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { tableFromIPC } from 'apache-arrow'
import { join } from 'node:path'
import { BatchEncoder } from '../pipeline/io/arrow-encoder.js'
import { encodeF16 } from '../schemas/float16.js'
import { makeUttBatch } from '../schemas/utterance.js'
import { inferSchema } from '../stages/infer/stage.js'
import { mulberry32 } from '../stages/nn/init.js'
import { readCorpus, type CorpusUtt } from '../stages/train/corpus.js'
import { chunkBatches } from '../stages/train/chunk-batches.js'
import { frameBatches } from '../stages/train/frame-batches.js'
import type { ModelMeta } from '../stages/train/model-store.js'
import { softTargetsAt, topkTargetsAt } from '../stages/train/soft-targets.js'
import {
  type BenchLine,
  type HarnessOptions,
  TEACHER,
  round,
  runMeta,
  tmpDir,
  uttLengths,
  writeRandomFeatures,
} from './common.js'

export interface SoftReadOptions {
  frames?: number
  temperature?: number
  reps?: number
}

export interface Mode {
  storage: string
  topK: number
  dtype: 'f32' | 'f16'
}

export const SOFT_MODES: Mode[] = [
  { storage: 'dense-f32', topK: 0, dtype: 'f32' },
  { storage: 'dense-f16', topK: 0, dtype: 'f16' },
  { storage: 'top8-f16', topK: 8, dtype: 'f16' },
  { storage: 'top32-f16', topK: 32, dtype: 'f16' },
  { storage: 'top128-f16', topK: 128, dtype: 'f16' },
]

const GOAL = 1_000_000

/** The modes `npm run bench -- soft-read` measures (the JSON lines of the issue-16 table). */
export const BENCH_MODES = SOFT_MODES.filter((m) => m.storage === 'dense-f16' || m.storage === 'top8-f16')

/**
 * Synthetic teacher log-probabilities for one utterance: logits with a few strong classes per frame
 * (as a trained teacher's peaked posteriors), log-softmaxed. Deterministic.
 */
function teacherLogp(frames: number, C: number, r: () => number): Float32Array {
  const out = new Float32Array(frames * C)
  for (let t = 0; t < frames; t++) {
    const row = out.subarray(t * C, (t + 1) * C)
    for (let c = 0; c < C; c++) row[c] = 2 * (r() + r() + r() - 1.5)
    for (let j = 0; j < 3; j++) row[Math.floor(r() * C)] += 6 + 4 * r()
    let max = -Infinity
    for (let c = 0; c < C; c++) max = Math.max(max, row[c])
    let sum = 0
    for (let c = 0; c < C; c++) sum += Math.exp(row[c] - max)
    const lse = max + Math.log(sum)
    for (let c = 0; c < C; c++) row[c] -= lse
  }
  return out
}

/** Write one soft-target file per storage mode from the same log-probabilities (also used by tests). */
export function writeSoftFiles(
  dir: string,
  lengths: number[],
  C: number,
  modes: Mode[] = SOFT_MODES,
  seed = 11,
): Map<string, string> {
  const meta = { numClasses: C, fingerprint: 'bench-teacher', inventory: null, priors: null } as unknown as ModelMeta
  const encs = modes.map((m) => {
    const schema = inferSchema(meta, { topK: m.topK, dtype: m.dtype }, 'bench-random-features')
    const enc = new BatchEncoder(schema, 'file')
    return { m, schema, enc, parts: [...enc.begin()] as Uint8Array[] }
  })
  const r = mulberry32(seed)
  const maxK = Math.max(0, ...modes.map((m) => m.topK))
  lengths.forEach((frames, u) => {
    const utt = `utt${String(u).padStart(6, '0')}`
    const lp = teacherLogp(frames, C, r)
    // classes of every frame by falling log p (sorted once, shared by the top-k modes)
    const sorted: number[][] = []
    for (let t = 0; maxK > 0 && t < frames; t++) {
      const row = lp.subarray(t * C, (t + 1) * C)
      sorted.push(
        Array.from({ length: C }, (_, c) => c)
          .sort((a, b) => row[b] - row[a])
          .slice(0, maxK),
      )
    }
    for (const e of encs) {
      if (!e.m.topK) {
        const logp = e.m.dtype === 'f16' ? encodeF16(lp) : Float32Array.from(lp)
        e.parts.push(...e.enc.encode(makeUttBatch(e.schema, { utt, logp })))
        continue
      }
      const k = e.m.topK
      const ids = new Uint16Array(frames * k)
      const vals = new Float32Array(frames * k)
      const tail = new Float32Array(frames)
      for (let t = 0; t < frames; t++) {
        const row = lp.subarray(t * C, (t + 1) * C)
        let mass = 0
        for (let j = 0; j < k; j++) {
          const c = sorted[t][j]
          ids[t * k + j] = c
          vals[t * k + j] = row[c]
          mass += Math.exp(row[c])
        }
        tail[t] = Math.max(0, 1 - mass)
      }
      e.parts.push(
        ...e.enc.encode(makeUttBatch(e.schema, { utt, ids, logp: e.m.dtype === 'f16' ? encodeF16(vals) : vals, tail })),
      )
    }
  })
  const paths = new Map<string, string>()
  for (const e of encs) {
    e.parts.push(...e.enc.finish())
    const p = join(dir, `soft-${e.m.storage}.arrow`)
    writeFileSync(p, Buffer.concat(e.parts))
    paths.set(e.m.storage, p)
  }
  return paths
}

const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9

/** The recurrent student's feeder as speech-source.ts configures it (defaults of ktp train-student). */
function chunkFeeder(utts: AsyncIterable<CorpusUtt>, T: number, C: number, sparse: boolean) {
  return chunkBatches(utts, {
    chunksPerBatch: 16,
    chunkLength: 20,
    bufferChunks: 4096,
    delay: 0,
    rand: mulberry32(3),
    hard: false,
    soft: true,
    temperature: T,
    numClasses: C,
    sparse,
    reuse: true,
  })
}

/** The DNN student's feeder (batch 256, ±5 splice) as speech-source.ts configures it. */
function frameFeeder(utts: AsyncIterable<CorpusUtt>, T: number, C: number) {
  return frameBatches(utts, {
    batchSize: 256,
    bufferFrames: 100_000,
    left: TEACHER.context,
    right: TEACHER.context,
    rand: mulberry32(3),
    hard: false,
    soft: true,
    temperature: T,
    numClasses: C,
    sparse: true,
    reuse: true,
  })
}

/** Frames with a target in a batch, and one target value (read, so nothing is optimised away). */
function touch(b: { soft?: Float32Array; sparse?: { probs: Float32Array; rest: Float32Array } }): number {
  return b.sparse ? b.sparse.probs[0] + b.sparse.rest[0] : b.soft![0]
}

async function timeChunks(
  utts: () => AsyncIterable<CorpusUtt>,
  T: number,
  C: number,
  sparse: boolean,
): Promise<{ seconds: number; frames: number }> {
  const t0 = process.hrtime.bigint()
  let frames = 0
  let check = 0
  for await (const b of chunkFeeder(utts(), T, C, sparse)) {
    frames += b.frames
    check += touch(b)
  }
  if (!Number.isFinite(check)) throw new Error('soft targets are not finite')
  return { seconds: seconds(t0), frames }
}

async function timeFrames(
  feats: string,
  soft: string,
  T: number,
  C: number,
): Promise<{ seconds: number; frames: number }> {
  const t0 = process.hrtime.bigint()
  let frames = 0
  let check = 0
  for await (const b of frameFeeder(readCorpus({ feats, soft }), T, C)) {
    frames += b.size
    check += touch(b)
  }
  if (!Number.isFinite(check)) throw new Error('soft targets are not finite')
  return { seconds: seconds(t0), frames }
}

/** Best (shortest) of a warm-up plus `reps` timed runs; checks the frame count every time. */
async function best(
  reps: number,
  frames: number,
  run: () => Promise<{ seconds: number; frames: number }>,
): Promise<number> {
  await run()
  let b = Infinity
  for (let r = 0; r < reps; r++) {
    const t = await run()
    if (t.frames !== frames) throw new Error(`feeder gave ${t.frames} frames, expected ${frames}`)
    b = Math.min(b, t.seconds)
  }
  return frames / b
}

async function readAll(feats: string, soft: string): Promise<{ seconds: number; utts: CorpusUtt[] }> {
  const t0 = process.hrtime.bigint()
  const utts: CorpusUtt[] = []
  for await (const u of readCorpus({ feats, soft })) utts.push(u)
  return { seconds: seconds(t0), utts }
}

async function* inMemory(utts: CorpusUtt[]): AsyncGenerator<CorpusUtt> {
  yield* utts
}

function timeTargets(utts: CorpusUtt[], T: number, C: number): number {
  const out = new Float32Array(C)
  const ids = new Int32Array(C)
  const t0 = process.hrtime.bigint()
  let frames = 0
  for (const u of utts) {
    const row = u.soft!
    if (row.kind === 'topk') for (let t = 0; t < u.frames; t++) topkTargetsAt(row, t, T, ids, out, 0)
    else for (let t = 0; t < u.frames; t++) softTargetsAt(row, t, T, out, 0)
    frames += u.frames
  }
  return frames / seconds(t0)
}

/**
 * The baseline: apache-arrow's own whole-file read, `tableFromIPC(readFileSync(f))` of the features
 * and the soft-target file, then every batch's value arrays reached (typed-array views, no per-row
 * objects). No targets are built: this is the read a feeder cannot beat without a faster Arrow reader.
 */
function timeTableFromIPC(feats: string, soft: string): { seconds: number; frames: number } {
  const t0 = process.hrtime.bigint()
  let frames = 0
  let check = 0
  for (const [path, col] of [
    [feats, 'feats'],
    [soft, 'logp'],
  ] as const) {
    const t = tableFromIPC(readFileSync(path))
    let n = 0
    for (const b of t.batches) {
      const list = b.getChild(col)!.data[0]
      const vals = list.children[0].children[0].values as ArrayLike<number>
      check += vals[0]
      n += list.valueOffsets[list.length] - list.valueOffsets[0]
    }
    if (col === 'logp') frames = n
  }
  if (Number.isNaN(check)) throw new Error('NaN in the files')
  return { seconds: seconds(t0), frames }
}

export async function benchSoftRead(h: HarnessOptions, o: SoftReadOptions = {}): Promise<BenchLine[]> {
  const dir = tmpDir('ktp-bench-soft-')
  const total = o.frames ?? (h.quick ? 600 : 20_000)
  const T = o.temperature ?? 2
  const reps = o.reps ?? h.reps ?? (h.quick ? 1 : 3)
  const C = TEACHER.classes
  const lengths = uttLengths(total, 5)
  const feats = join(dir, 'feats.arrow')
  const frames = writeRandomFeatures(feats, lengths, TEACHER.featDim, { seed: 2 })
  h.log(`soft-read: writing ${frames} frames × ${C} classes in ${BENCH_MODES.length} storage modes`)
  const paths = writeSoftFiles(dir, lengths, C, BENCH_MODES)
  const lines: BenchLine[] = []
  for (const m of BENCH_MODES) {
    const soft = paths.get(m.storage)!
    const fps = await best(reps, frames, () => timeChunks(() => readCorpus({ feats, soft }), T, C, true))
    const framesFps = await best(reps, frames, () => timeFrames(feats, soft, T, C))
    const denseFps = m.topK
      ? await best(reps, frames, () => timeChunks(() => readCorpus({ feats, soft }), T, C, false))
      : null
    const { seconds: readS, utts } = await readAll(feats, soft)
    const batchingFps = await best(reps, frames, () => timeChunks(() => inMemory(utts), T, C, true))
    const denseBatchingFps = m.topK
      ? await best(reps, frames, () => timeChunks(() => inMemory(utts), T, C, false))
      : null
    const targetsFps = timeTargets(utts, T, C)
    const bpf = statSync(soft).size / frames
    const baseFps = await best(reps, frames, async () => timeTableFromIPC(feats, soft))
    const goal = m.storage === 'dense-f16' || m.storage === 'dense-f32' ? 300_000 : GOAL
    lines.push({
      name: 'soft-read',
      variant: m.storage,
      ktp: round(fps),
      reference: round(baseFps),
      unit: 'frames/s',
      ratio: round(fps / baseFps),
      reference_is:
        'apache-arrow tableFromIPC(readFileSync(f)) of features + soft targets, value arrays reached, no targets built',
      goal: `ktp >= ${goal.toLocaleString('en')} frames/s`,
      goal_ratio: round(fps / goal),
      bytes_per_frame: round(bpf),
      frames,
      temperature: T,
      targets: m.topK ? 'sparse' : 'dense',
      layout: 'chunks 16×20',
      frames_fps: round(framesFps),
      frames_layout: 'batch 256, ±5 splice',
      dense_targets_fps: denseFps === null ? null : round(denseFps),
      batching_fps: round(batchingFps),
      dense_batching_fps: denseBatchingFps === null ? null : round(denseBatchingFps),
      read_fps: round(frames / readS),
      targets_fps: round(targetsFps),
      ...runMeta({ ktp: 1, reference: 1 }),
    })
    h.log(
      `soft-read ${m.storage}: ${fps.toFixed(0)} frames/s (chunks, ${m.topK ? 'sparse' : 'dense'} targets), ${bpf.toFixed(0)} B/frame; ` +
        `frames ±5: ${framesFps.toFixed(0)}${denseFps === null ? '' : `, dense targets from top-k: ${denseFps.toFixed(0)}`}; ` +
        `batching alone ${batchingFps.toFixed(0)}${denseBatchingFps === null ? '' : ` (dense targets ${denseBatchingFps.toFixed(0)})`}, read alone ${(frames / readS).toFixed(0)}, targets alone ${targetsFps.toFixed(0)} frames/s`,
    )
  }
  return lines
}
