import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { makeSchema } from '../schemas/kinds.js'
import { makeUttBatch } from '../schemas/utterance.js'
import { BatchEncoder } from '../pipeline/io/arrow-encoder.js'
import { mulberry32 } from '../stages/nn/init.js'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
export const CLI = join(ROOT, 'dist', 'pipeline', 'cli', 'main.js')

export function tmp(prefix = 'ktp-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

/** Deterministic pseudo-random floats (mulberry32, as model initialisation uses) for fixtures. */
export const rng = mulberry32

export interface FakeUtt {
  utt: string
  frames: number
}

/** Write a features@1 Arrow file of random values; returns the matrices written. */
export function writeFeatures(
  path: string,
  utts: FakeUtt[],
  dim: number,
  seed = 1,
  fp = 'test-fingerprint',
): Map<string, Float32Array> {
  const schema = makeSchema('features', { widths: { feats: dim }, metadata: { 'ktp.fingerprint': fp } })
  const enc = new BatchEncoder(schema, 'file')
  const r = rng(seed)
  const parts: Uint8Array[] = [...enc.begin()]
  const out = new Map<string, Float32Array>()
  for (const u of utts) {
    const data = new Float32Array(u.frames * dim)
    for (let i = 0; i < data.length; i++) data[i] = r() * 2 - 1
    out.set(u.utt, data)
    parts.push(...enc.encode(makeUttBatch(schema, { utt: u.utt, feats: data })))
  }
  parts.push(...enc.finish())
  writeFileSync(path, Buffer.concat(parts))
  return out
}

export function uttList(n: number, frames: (i: number) => number, prefix = 'utt'): FakeUtt[] {
  return Array.from({ length: n }, (_, i) => ({ utt: `${prefix}${String(i).padStart(5, '0')}`, frames: frames(i) }))
}

export interface RunResult {
  code: number | null
  stdout: Buffer
  stderr: string
}

/** Run `ktp ARGS` synchronously (a real child process). */
export function ktp(args: string[], opts: { input?: Buffer; cwd?: string } = {}): RunResult {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    input: opts.input,
    cwd: opts.cwd ?? ROOT,
    maxBuffer: 1 << 30,
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString() }
}

/** Run a shell pipeline in which `ktp` is the CLI under test. */
export function sh(cmd: string, cwd = ROOT): RunResult {
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', cmd], {
    cwd,
    maxBuffer: 1 << 30,
    env: { ...process.env, PATH: `${join(ROOT, 'node_modules', '.bin')}:${process.env.PATH}` },
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString() }
}

export const KTP = `node ${CLI}`

export { spawn }
