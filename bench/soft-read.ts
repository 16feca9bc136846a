/**
 * `soft-read`: how fast a student's data feeder turns stored teacher output into dense training
 * targets. The same teacher output (C = 1000 classes, log-probabilities at T = 1) is written in
 * five storage modes — dense f32, dense f16, top-8/32/128 f16 — with the production schema
 * (stages/infer.ts inferSchema); then, per mode, stages/train/corpus.ts readCorpus (features joined
 * with soft targets, streamed from the files) feeds stages/train/frame-batches.ts frameBatches
 * (frame-shuffled batches of 256, ±5 frames spliced, dense soft targets at T = 2), timed from open to
 * the last batch. Reported per mode: frames/s and bytes per frame of the soft-target file. No
 * reference: `ratio` is frames/s over the 1M frames/s goal.
 *
 * Where the time goes (extra fields, same data, in memory): `read_fps` walks readCorpus alone;
 * `targets_fps` calls softTargetsAt for every frame into one reused buffer (no I/O, no batching).
 */
import { statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BatchEncoder } from '../pipeline/arrow-encoder.js'
import { encodeF16 } from '../schemas/float16.js'
import { makeUttBatch } from '../schemas/utterance.js'
import { inferSchema } from '../stages/infer.js'
import { mulberry32 } from '../stages/nn/init.js'
import { readCorpus, type CorpusUtt } from '../stages/train/corpus.js'
import { frameBatches } from '../stages/train/frame-batches.js'
import type { ModelMeta } from '../stages/train/model-store.js'
import { softTargetsAt } from '../stages/train/soft-targets.js'
import { BenchLine, HarnessOptions, TEACHER, round, tmpDir, uttLengths, writeRandomFeatures } from './common.js'

export interface SoftReadOptions {
  frames?: number
  temperature?: number
  reps?: number
}

interface Mode {
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

/** Write one soft-target file per storage mode from the same log-probabilities. */
function writeSoftFiles(dir: string, lengths: number[], C: number): Map<string, string> {
  const meta = { numClasses: C, fingerprint: 'bench-teacher', inventory: null, priors: null } as unknown as ModelMeta
  const encs = SOFT_MODES.map((m) => {
    const schema = inferSchema(meta, { topK: m.topK, dtype: m.dtype, batchUtts: 32 }, 'bench-random-features')
    const enc = new BatchEncoder(schema, 'file')
    return { m, schema, enc, parts: [...enc.begin()] as Uint8Array[] }
  })
  const r = mulberry32(11)
  const order = new Uint32Array(C)
  lengths.forEach((frames, u) => {
    const utt = `utt${String(u).padStart(6, '0')}`
    const lp = teacherLogp(frames, C, r)
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
        for (let c = 0; c < C; c++) order[c] = c
        const sorted = Array.from(order).sort((a, b) => row[b] - row[a])
        let mass = 0
        for (let j = 0; j < k; j++) {
          ids[t * k + j] = sorted[j]
          vals[t * k + j] = row[sorted[j]]
          mass += Math.exp(row[sorted[j]])
        }
        tail[t] = Math.max(0, 1 - mass)
      }
      e.parts.push(...e.enc.encode(makeUttBatch(e.schema, { utt, ids, logp: encodeF16(vals), tail })))
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

async function timeBatches(feats: string, soft: string, T: number, C: number): Promise<{ seconds: number; frames: number }> {
  const t0 = process.hrtime.bigint()
  let frames = 0
  let check = 0
  for await (const b of frameBatches(readCorpus({ feats, soft }), {
    batchSize: 256, bufferFrames: 100_000, left: TEACHER.context, right: TEACHER.context, rand: mulberry32(3),
    hard: false, soft: true, temperature: T, numClasses: C,
  })) {
    frames += b.size
    check += b.soft![0]
  }
  if (!Number.isFinite(check)) throw new Error('soft targets are not finite')
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, frames }
}

async function readAll(feats: string, soft: string): Promise<{ seconds: number; utts: CorpusUtt[] }> {
  const t0 = process.hrtime.bigint()
  const utts: CorpusUtt[] = []
  for await (const u of readCorpus({ feats, soft })) utts.push(u)
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, utts }
}

function timeTargets(utts: CorpusUtt[], T: number, C: number): number {
  const out = new Float32Array(C)
  const t0 = process.hrtime.bigint()
  let frames = 0
  for (const u of utts) {
    for (let t = 0; t < u.frames; t++) softTargetsAt(u.soft!, t, T, out, 0)
    frames += u.frames
  }
  return frames / (Number(process.hrtime.bigint() - t0) / 1e9)
}

export async function benchSoftRead(h: HarnessOptions, o: SoftReadOptions = {}): Promise<BenchLine[]> {
  const dir = tmpDir('ktp-bench-soft-')
  const total = o.frames ?? (h.quick ? 600 : 20_000)
  const T = o.temperature ?? 2
  const reps = o.reps ?? (h.quick ? 1 : 3)
  const C = TEACHER.classes
  const lengths = uttLengths(total, 5)
  const feats = join(dir, 'feats.arrow')
  const frames = writeRandomFeatures(feats, lengths, TEACHER.featDim, { seed: 2 })
  h.log(`soft-read: writing ${frames} frames × ${C} classes in ${SOFT_MODES.length} storage modes`)
  const paths = writeSoftFiles(dir, lengths, C)
  const lines: BenchLine[] = []
  for (const m of SOFT_MODES) {
    const soft = paths.get(m.storage)!
    await timeBatches(feats, soft, T, C) // warm-up (JIT, page cache)
    let best = Infinity
    for (let r = 0; r < reps; r++) {
      const t = await timeBatches(feats, soft, T, C)
      if (t.frames !== frames) throw new Error(`frameBatches gave ${t.frames} frames, expected ${frames}`)
      best = Math.min(best, t.seconds)
    }
    const { seconds: readS, utts } = await readAll(feats, soft)
    const targetsFps = timeTargets(utts, T, C)
    const fps = frames / best
    lines.push({
      name: 'soft-read', variant: m.storage, ktp: round(fps), reference: null, unit: 'frames/s', ratio: round(fps / GOAL),
      ratio_of: 'goal 1M frames/s', bytes_per_frame: round(statSync(soft).size / frames), frames, temperature: T, batch: 256, context: TEACHER.context,
      read_fps: round(frames / readS), targets_fps: round(targetsFps),
    })
    h.log(`soft-read ${m.storage}: ${fps.toFixed(0)} frames/s, ${(statSync(soft).size / frames).toFixed(0)} B/frame (read alone ${(frames / readS).toFixed(0)}, softTargetsAt alone ${targetsFps.toFixed(0)} frames/s)`)
  }
  return lines
}
