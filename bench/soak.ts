/**
 * Soak test of docs/ARCHITECTURE.md §3 (not part of `npm test`; minutes of work):
 *   node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/soak.ts [--seed N] [--summary FILE]
 * (or, after `npx tsc -p .`, `node dist/bench/soak.js`).
 *
 * For each file-writing stage — features, cmvn apply, labels, infer, cat, merge, and one training
 * run with --resume — it makes the output once without interruption, then again several times with a
 * SIGKILL at a random instant (seeded), each followed by the same command run to completion. Data
 * outputs must be byte-identical to the uninterrupted one; the training run must end with an
 * identical params.bin. Then SIGINT / SIGTERM: a clean stop with a message and a state the same
 * command resumes from. Prints `N/N identical resumes` and writes a JSON summary.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openArrow } from '../pipeline/io/arrow-source.js'
import { puller } from '../pipeline/io/pull.js'
import { numFrames, uttId } from '../schemas/utterance.js'
import { mulberry32 } from '../stages/nn/init.js'

const ROOT = [dirname(fileURLToPath(import.meta.url)), join(dirname(fileURLToPath(import.meta.url)), '..')]
  .map((d) => join(d, '..'))
  .find((d) => existsSync(join(d, 'dist', 'pipeline', 'cli', 'main.js')))!
const CLI = join(ROOT, 'dist', 'pipeline', 'cli', 'main.js')
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : dflt
}
const SEED = Number(arg('seed', '20261129'))
const work = mkdtempSync(join(tmpdir(), 'ktp-soak-'))
const SUMMARY = arg('summary', join(work, 'soak-summary.json'))

const rand = mulberry32(SEED)
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16)
const log = (s: string) => process.stderr.write(`${s}\n`)
const readdirSafe = (d: string) => (existsSync(d) ? readdirSync(d) : [])

interface Done {
  code: number | null
  signal: NodeJS.Signals | null
  stderr: string
  ms: number
  running: boolean
}

/** Run ktp; optionally send `signal` after `at` ms. `running` says whether the signal hit a live process. */
function run(args: string[], kill?: { at: number; signal: NodeJS.Signals }): Promise<Done> {
  return new Promise((resolve) => {
    const t0 = Date.now()
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    let running = false
    child.stderr.on('data', (c) => (stderr += c))
    const timer =
      kill &&
      setTimeout(() => {
        running = child.exitCode === null && child.signalCode === null
        child.kill(kill.signal)
      }, kill.at)
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer)
      resolve({ code, signal, stderr, ms: Date.now() - t0, running })
    })
  })
}

async function must(args: string[]): Promise<Done> {
  const r = await run(args)
  if (r.code !== 0) throw new Error(`ktp ${args.join(' ')} failed (${r.code}):\n${r.stderr}`)
  return r
}

// ------------------------------------------------------------------ inputs

function wav16(samples: Int16Array, rate: number): Buffer {
  const data = Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength)
  const h = Buffer.alloc(44)
  h.write('RIFF', 0)
  h.writeUInt32LE(36 + data.length, 4)
  h.write('WAVEfmt ', 8)
  h.writeUInt32LE(16, 16)
  h.writeUInt16LE(1, 20)
  h.writeUInt16LE(1, 22)
  h.writeUInt32LE(rate, 24)
  h.writeUInt32LE(rate * 2, 28)
  h.writeUInt16LE(2, 32)
  h.writeUInt16LE(16, 34)
  h.write('data', 36)
  h.writeUInt32LE(data.length, 40)
  return Buffer.concat([h, data])
}

const N_UTTS = Number(arg('utts', '240'))
const data = join(work, 'data')
mkdirSync(join(data, 'wav'), { recursive: true })
const wavScp: string[] = []
const utt2spk: string[] = []
for (let i = 0; i < N_UTTS; i++) {
  const utt = `spk${i % 4}-u${String(i).padStart(4, '0')}`
  const n = Math.round(8000 * (0.6 + rand()))
  const x = new Int16Array(n)
  const f = 200 + 600 * rand()
  for (let k = 0; k < n; k++) x[k] = Math.round(2000 * Math.sin((2 * Math.PI * f * k) / 8000) + 300 * (rand() - 0.5))
  const p = join(data, 'wav', `${utt}.wav`)
  writeFileSync(p, wav16(x, 8000))
  wavScp.push(`${utt} ${p}`)
  utt2spk.push(`${utt} spk${i % 4}`)
}
writeFileSync(join(data, 'wav.scp'), `${wavScp.sort().join('\n')}\n`)
writeFileSync(join(data, 'utt2spk'), `${utt2spk.sort().join('\n')}\n`)

// ------------------------------------------------------------------ trials

interface Trial {
  stage: string
  kind: 'SIGKILL' | 'SIGINT' | 'SIGTERM'
  at: number
  hit: boolean
  identical: boolean
  resumed: string
  note: string
}
const trials: Trial[] = []
const refDur = new Map<string, number>()

/**
 * One stage: the uninterrupted reference (args with OUT), then `kills` SIGKILL trials each into a
 * fresh output, followed by the same command. `compare` names the file compared within an output.
 */
async function stage(
  name: string,
  args: (out: string) => string[],
  out: (k: string) => string,
  kills: number,
  opts: { compare?: (o: string) => string; rerunArgs?: (o: string) => string[] } = {},
): Promise<void> {
  const cmp = opts.compare ?? ((o: string) => o)
  const ref = out('ref')
  const r0 = await must(args(ref))
  const refHash = sha(cmp(ref))
  refDur.set(name, r0.ms)
  log(`${name}: reference in ${r0.ms} ms (${refHash})`)
  let k = 0
  let attempts = 0
  // the machine's load changes: a run that ends before its kill tells how long a run takes now
  let base = r0.ms
  while (k < kills && attempts < kills * 3) {
    attempts++
    const o = out(`k${attempts}`)
    const at = Math.round(base * (0.15 + 0.85 * rand()))
    const killed = await run(args(o), { at, signal: 'SIGKILL' })
    if (!killed.running) {
      base = Math.min(base, killed.ms)
      continue
    } // finished before the kill: not a trial
    k++
    const ck = opts.compare ? readdirSafe(o).filter((f) => f.startsWith('checkpoint')).length : 0
    const again = await run((opts.rerunArgs ?? args)(o))
    const m = /resuming, (\d+) utterances/.exec(again.stderr) ?? (ck ? ['', `checkpoint`] : null)
    const identical = again.code === 0 && existsSync(cmp(o)) && sha(cmp(o)) === refHash && !existsSync(`${o}.partial`)
    trials.push({
      stage: name,
      kind: 'SIGKILL',
      at,
      hit: true,
      identical,
      resumed: m ? m[1] : '0',
      note: again.code === 0 ? '' : again.stderr.slice(-300),
    })
    log(
      `${name}: SIGKILL at ${at} ms → rerun ${identical ? 'identical' : 'DIFFERENT'} (${m ? `resumed ${m[1]}` : 'nothing kept'})`,
    )
  }
}

async function signalTrial(
  name: string,
  sig: 'SIGINT' | 'SIGTERM',
  args: (out: string) => string[],
  out: (k: string) => string,
  refMs: number,
  opts: { compare?: (o: string) => string; rerunArgs?: (o: string) => string[] } = {},
): Promise<void> {
  const cmp = opts.compare ?? ((o: string) => o)
  const refHash = sha(cmp(out('ref')))
  let base = refMs
  for (let attempt = 0; attempt < 6; attempt++) {
    const o = out(`${sig.toLowerCase()}${attempt}`)
    const at = Math.round(base * (0.35 + 0.3 * rand()))
    const r = await run(args(o), { at, signal: sig })
    if (!r.running) {
      base = Math.min(base, r.ms)
      continue
    }
    const clean = r.signal === null && /received, stopping|interrupted/.test(r.stderr)
    const again = await run((opts.rerunArgs ?? args)(o))
    const identical = again.code === 0 && sha(cmp(o)) === refHash
    const m = /resuming, (\d+) utterances/.exec(again.stderr)
    trials.push({
      stage: name,
      kind: sig,
      at,
      hit: true,
      identical,
      resumed: m ? m[1] : '0',
      note: clean
        ? `clean stop, exit ${r.code}: ${r.stderr
            .trim()
            .split('\n')
            .filter((l) => /stopping|interrupted/.test(l))
            .join(' | ')}`
        : `no clean stop: exit ${r.code}, signal ${r.signal}`,
    })
    log(
      `${name}: ${sig} at ${at} ms → ${clean ? `clean stop (exit ${r.code})` : `killed by ${r.signal ?? `exit ${r.code}`}`}; rerun ${identical ? 'identical' : 'DIFFERENT'}`,
    )
    return
  }
}

const t0 = Date.now()
const E = (p: string) => join(work, 'exp', p)
mkdirSync(E(''), { recursive: true })

const featArgs = (o: string) => ['features', data, '--num-mel-bins', '23', '-o', o, '--quiet']
await stage('features', featArgs, (k) => E(`feats.${k}.arrow`), 4)
const feats = E('feats.ref.arrow')
await must(['cmvn', 'compute', feats, '-o', E('cmvn.json')])
const cmvnArgs = (o: string) => ['cmvn', 'apply', '--stats', E('cmvn.json'), '--norm-vars', feats, '-o', o, '--quiet']
await stage('cmvn apply', cmvnArgs, (k) => E(`cmvn.${k}.arrow`), 4)
const norm = E('cmvn.ref.arrow')

// an alignment: 4 classes in runs along each utterance
const frames = new Map<string, number>()
{
  const a = await openArrow(norm, ['features'])
  const next = puller(a.stream())
  for (let b = await next(); b; b = await next()) frames.set(uttId(b), numFrames(b))
}
writeFileSync(
  E('ali.txt'),
  `${[...frames]
    .map(([u, n]) => `${u} ${Array.from({ length: n }, (_, t) => Math.floor((4 * t) / n)).join(' ')}`)
    .join('\n')}\n`,
)
writeFileSync(E('inv.txt'), 'a 0\nb 1\nc 2\nd 3\n')
const labArgs = (o: string) => [
  'labels',
  '--ali',
  E('ali.txt'),
  '--inventory',
  E('inv.txt'),
  '--feats',
  norm,
  '-o',
  o,
  '--quiet',
]
await stage('labels', labArgs, (k) => E(`labels.${k}.arrow`), 3)
const labels = E('labels.ref.arrow')

const trainArgs = (o: string) => [
  'train',
  '--feats',
  norm,
  '--labels',
  labels,
  '--model',
  '{"type":"dnn","hidden":[48,48]}',
  '--context',
  '2',
  '--batch-size',
  '64',
  '--max-epochs',
  '3',
  '--fixed-lr',
  '--lr',
  '0.05',
  '--checkpoint-minutes',
  '0.01',
  '--backend',
  'wasm',
  '-o',
  o,
]
await stage('train --resume', trainArgs, (k) => E(`model.${k}`), 3, {
  compare: (o) => join(o, 'params.bin'),
  rerunArgs: (o) => [...trainArgs(o), '--resume'],
})
const model = E('model.ref')

const inferArgs = (o: string) => ['infer', '--model', model, norm, '-o', o, '--quiet']
await stage('infer', inferArgs, (k) => E(`soft.${k}.arrow`), 3)

const catArgs = (o: string) => ['cat', norm, '-o', o, '--quiet']
await stage('cat', catArgs, (k) => E(`cat.${k}.arrow`), 2)
await must(['cat', norm, '--shard', '1/2', '-o', E('part1.arrow'), '--quiet'])
await must(['cat', norm, '--shard', '2/2', '-o', E('part2.arrow'), '--quiet'])
const mergeArgs = (o: string) => ['merge', E('part1.arrow'), E('part2.arrow'), '-o', o, '--quiet']
await stage('merge', mergeArgs, (k) => E(`merged.${k}.arrow`), 2)

// clean stops
const refMs = (name: string) => refDur.get(name) ?? 2000
await signalTrial('features', 'SIGINT', featArgs, (k) => E(`feats.${k}.arrow`), refMs('features'))
await signalTrial('cmvn apply', 'SIGTERM', cmvnArgs, (k) => E(`cmvn.${k}.arrow`), refMs('cmvn apply'))
await signalTrial('train --resume', 'SIGTERM', trainArgs, (k) => E(`model.${k}`), refMs('train --resume'), {
  compare: (o) => join(o, 'params.bin'),
  rerunArgs: (o) => [...trainArgs(o), '--resume'],
})

const kills = trials.filter((x) => x.kind === 'SIGKILL')
const same = kills.filter((x) => x.identical).length
const summary = {
  command: 'node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/soak.ts',
  seed: SEED,
  utterances: N_UTTS,
  date: new Date().toISOString(),
  seconds: Math.round((Date.now() - t0) / 1000),
  sigkill: {
    trials: kills.length,
    identical: same,
    resumedWithWorkKept: kills.filter((x) => x.resumed !== '0').length,
  },
  signals: trials.filter((x) => x.kind !== 'SIGKILL'),
  perStage: Object.fromEntries(
    [...new Set(kills.map((x) => x.stage))].map((s) => [
      s,
      `${kills.filter((x) => x.stage === s && x.identical).length}/${kills.filter((x) => x.stage === s).length}`,
    ]),
  ),
  trials,
  work,
}
writeFileSync(SUMMARY, `${JSON.stringify(summary, null, 1)}\n`)
console.log(
  `${same}/${kills.length} identical resumes after SIGKILL (${summary.sigkill.resumedWithWorkKept} of them resumed kept work); ` +
    `signals: ${summary.signals.map((x) => `${x.stage} ${x.kind} ${x.identical ? 'identical' : 'DIFFERENT'} (${x.note.split(':')[0]})`).join('; ')}`,
)
console.log(`summary: ${SUMMARY}`)
process.exitCode = same === kills.length && summary.signals.every((x) => x.identical) ? 0 : 1
