// SIGTERM/SIGINT honoured by every long-running ktp command (issue 17): each real `ktp` process is
// stopped once it is under way and must exit 143 (SIGTERM) or 130 (SIGINT), say so in one line
// (no stack trace), and leave no partial output under the final name: the output is absent, or
// the previous whole one. Training leaves a checkpoint that --resume continues.
//
// "Under way" without guessing at timings: a command that reads stdin is fed more than a pipe
// holds (so it has been reading inside its handler) and stdin is then held open, so that the
// signal finds it mid-stream; the others are signalled once their first output appears.
// Cost: 11 ktp processes of ~1-3 s of CPU each, on tiny generated data; the cases run at once
// (they are independent) and the subtests then check what each left. Every Arrow stage stops
// through the one stage runner (splice stands for them); training through trainStoppable (the
// RBM run here, `train` in bad-inputs-train.test.ts).
import t, { type Test } from 'tap'
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeSchema } from '../schemas/kinds.js'
import { makeUttBatch } from '../schemas/utterance.js'
import { BatchEncoder } from '../pipeline/io/arrow-encoder.js'
import { hmmInit, hmmInitOptions } from '../stages/hmm-init/stage.js'
import { CLI, KTP, ROOT, rng, sh, tmp } from './helpers.js'

const D = tmp('ktp-signals-')
const p = (f: string) => join(D, f)
const DIM = 4
const C = 11 // pdfs of the hmm-init below: sil 2 states, three words of 3

type Rows = Record<string, unknown>[]
function arrow(
  kind: string,
  widths: Record<string, number>,
  meta: Record<string, string>,
  rows: Rows,
  fmt: 'file' | 'stream',
): Buffer {
  const schema = makeSchema(kind as never, { widths, metadata: { 'ktp.fingerprint': 'sig-test', ...meta } })
  const enc = new BatchEncoder(schema, fmt)
  const parts: Uint8Array[] = [...enc.begin()]
  for (const r of rows) parts.push(...enc.encode(makeUttBatch(schema, r as never)))
  if (fmt === 'file') parts.push(...enc.finish())
  return Buffer.concat(parts)
}
const ids = (n: number) => Array.from({ length: n }, (_, i) => `u${String(i).padStart(3, '0')}`)
const r = rng(3)
const featRows = (n: number, frames = 100) =>
  ids(n).map((utt) => ({ utt, feats: Float32Array.from({ length: frames * DIM }, () => r() * 2 - 1) }))

// stdin prefixes: ~240 KB, several times what a pipe holds; the stream is never ended
const FEATS_HEAD = arrow('features', { feats: DIM }, {}, featRows(150), 'stream')
const logp = (frames: number) => Float32Array.from({ length: frames * C }, () => Math.log(1 / C) + (r() - 0.5) * 0.1)
const SCORES_HEAD = arrow(
  'soft-dense',
  { logp: C },
  {},
  ids(60).map((utt) => ({ utt, logp: logp(100) })),
  'stream',
)
const LABELS_HEAD = arrow(
  'labels',
  {},
  { 'ktp.num_classes': String(C) },
  ids(600).map((utt) => ({ utt, labels: Int32Array.from({ length: 100 }, (_, i) => i % C) })),
  'stream',
)

// training data: 200 utterances of 100 frames, 3 classes
writeFileSync(p('feats.arrow'), arrow('features', { feats: DIM }, {}, featRows(200), 'file'))
writeFileSync(
  p('labels.arrow'),
  arrow(
    'labels',
    {},
    { 'ktp.num_classes': '3' },
    ids(200).map((utt) => ({ utt, labels: Int32Array.from({ length: 100 }, (_, i) => i % 3) })),
    'file',
  ),
)
writeFileSync(
  p('text'),
  ids(60)
    .map((u) => `${u} one two\n`)
    .join(''),
)
writeFileSync(p('stats.json'), 'previous statistics\n')
writeFileSync(p('hyp.trn'), 'previous hypotheses\n')
writeFileSync(
  p('scores.arrow'),
  arrow(
    'soft-dense',
    { logp: C },
    {},
    ids(60).map((utt) => ({ utt, logp: logp(100) })),
    'file',
  ),
)
hmmInit(hmmInitOptions.parse({ words: 'one,two,three', states: 3, silence: 'sil', silenceStates: 2 }), {
  output: p('hmm.json'),
})

interface Stopped {
  code: number | null
  signal: NodeJS.Signals | null
  stderr: string
}

/** Start `ktp ARGS`, wait for `underWay(stderr so far)`, send `sig`, and collect the end. */
function stopWhen(
  args: string[],
  sig: NodeJS.Signals,
  underWay: (child: ChildProcess, stderr: () => string) => Promise<void>,
  stdin = false,
): Promise<Stopped> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: [stdin ? 'pipe' : 'ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (c) => (stderr += c))
  child.stdin?.on('error', () => {}) // it may end before it has read all
  const killer = setTimeout(() => child.kill('SIGKILL'), 300_000)
  const closed = new Promise<Stopped>((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(killer)
      resolve({ code, signal, stderr })
    }),
  )
  underWay(child, () => stderr).then(() => child.kill(sig))
  return closed.finally(() => child.stdin?.destroy())
}

/**
 * Has the process a handler for SIGTERM and SIGINT (/proc/PID/status SigCgt)? Node installs none
 * by default; ktp's command guard does, as the command's handler starts: from then on a signal
 * is the command's to handle, and before it the signal would kill the process as usual.
 */
function guarded(pid: number): boolean {
  try {
    const m = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    const mask = BigInt(`0x${m?.[1] ?? '0'}`)
    return (mask & (1n << 14n)) !== 0n && (mask & (1n << 1n)) !== 0n
  } catch {
    return false
  }
}

/** Fed `head` on stdin, under way (its handler guards it), then signalled with stdin still open. */
const fed = (args: string[], head: Buffer, sig: NodeJS.Signals, extra: () => boolean = () => true) =>
  stopWhen(
    args,
    sig,
    async (child) => {
      await new Promise<void>((resolve) => child.stdin!.write(head, () => resolve()))
      while (!guarded(child.pid!) || !extra()) await new Promise((r) => setTimeout(r, 20))
    },
    true,
  )

/** Signalled once `path` exists (polled), or once stderr matches. */
const when =
  (test: string | RegExp) =>
  async (_child: ChildProcess, stderr: () => string): Promise<void> => {
    for (;;) {
      if (typeof test === 'string' ? existsSync(test) : test.test(stderr())) return
      await new Promise((r) => setTimeout(r, 20))
    }
  }

const EXIT = { SIGTERM: 143, SIGINT: 130 } as const

function stoppedCleanly(t: Test, r: Stopped, sig: 'SIGTERM' | 'SIGINT', message: RegExp): void {
  t.equal(r.code, EXIT[sig], `exit ${EXIT[sig]} (got ${r.code}, signal ${r.signal}; stderr: ${r.stderr.slice(-300)})`)
  t.match(r.stderr, message, 'says what stopped it and how to go on')
  t.notMatch(r.stderr, /internal error|\n\s+at /, 'no stack trace')
}

/** No temp file or partial directory of an atomic write is left in `dir`. */
function noLitter(t: Test, dir: string): void {
  t.same(
    readdirSync(dir).filter((f) => /\.tmp-\d+$|\.partial-\d+$/.test(f)),
    [],
    `no temp files left in ${dir}`,
  )
}

const STAGE_STOP = (stage: string, sig: string) =>
  new RegExp(`ktp ${stage}: stopped by ${sig}; \\d+ utterances are kept for the next run`)
const AT_ONCE = (cmd: string, sig: string) =>
  new RegExp(`ktp: error: ktp ${cmd}: stopped by ${sig}; no partial output is left`)

// ---- the runs, all at once --------------------------------------------------------------------
// every Arrow stage stops through the one stage runner: splice stands for them here
const ARROW_CASES: [string, string[], Buffer, 'SIGTERM' | 'SIGINT'][] = [
  ['splice', ['splice', '-', '--context', '2'], FEATS_HEAD, 'SIGINT'],
]
writeFileSync(p('hmm1.json'), 'previous model\n')
const TEACHER = [
  ...['train-teacher', '--model', '{"type":"dnn","hidden":[16,16]}', '--pretrain', 'rbm', '--context', '1'],
  ...[
    '--backend',
    'cpu',
    '--max-epochs',
    '1',
    '--fixed-lr',
    '--feats',
    p('feats.arrow'),
    '--labels',
    p('labels.arrow'),
  ],
]
const waitForFile = (test: () => boolean) => async () => {
  while (!test()) await new Promise((r) => setTimeout(r, 20))
}
const hasWav = () => existsSync(p('digits/wav')) && readdirSync(p('digits/wav')).some((f) => f.endsWith('.wav'))

const runs = {
  // signalled once its partial output exists: it has read the stream's schema and is waiting for more
  arrow: Promise.all(
    ARROW_CASES.map(([name, args, head, sig]) =>
      fed([...args, '-o', p(`${name}.arrow`)], head, sig, () => existsSync(p(`${name}.arrow.partial`))),
    ),
  ),
  decode: fed(['decode', '--hmm', p('hmm.json'), '--lm', 'uniform', '-', '-o', p('hyp.trn')], SCORES_HEAD, 'SIGTERM'),
  cmvnCompute: fed(['cmvn', 'compute', '-', '-o', p('stats.json')], FEATS_HEAD, 'SIGINT'),
  kaldiText: fed(['cat', '-', '--format', 'kaldi-text', '-o', p('feats.txt')], FEATS_HEAD, 'SIGTERM'),
  hmmUpdate: fed(['hmm-update', '--hmm', p('hmm.json'), '-', '-o', p('hmm1.json')], LABELS_HEAD, 'SIGTERM'),
  connect: stopWhen(
    ['connect-digits', join(ROOT, 'fixtures', 'fsdd'), '-o', p('digits')],
    'SIGTERM',
    waitForFile(hasWav),
  ),
  // the RBM run is signalled inside the Gaussian layer's second epoch (it has 2, of 30 batches)
  rbm: stopWhen([...TEACHER, '-o', p('teacher')], 'SIGTERM', when(/RBM layer 1 .* epoch 1: reconstruction error/)),
  rbmReference: stopWhen([...TEACHER, '-o', p('teacher-ref')], 'SIGTERM', () => new Promise(() => {})),
  run: stopWhen(['run', 'fsdd', '--quick', '--out', p('run')], 'SIGINT', when(/connect-digits +running/)),
}

t.test('Arrow stages (the shared stage runner): stopped mid-stream, finished utterances kept, no output', async (t) => {
  const results = await runs.arrow
  ARROW_CASES.forEach(([name, args, , sig], i) => {
    const res = results[i]
    const stage = args[0] === 'cmvn' ? 'cmvn-apply' : args[0]
    stoppedCleanly(t, res, sig, STAGE_STOP(stage, sig))
    t.match(res.stderr, new RegExp(`${sig} received, stopping; run the same command again to resume`))
    t.notOk(existsSync(p(`${name}.arrow`)), `${name}: no output file`)
    t.ok(existsSync(p(`${name}.arrow.partial`)), `${name}: the finished utterances are kept for the rerun`)
  })
})

t.test('commands without a stage boundary stop at once: the previous output stays whole', async (t) => {
  let res = await runs.decode
  stoppedCleanly(t, res, 'SIGTERM', AT_ONCE('decode', 'SIGTERM'))
  t.equal(readFileSync(p('hyp.trn'), 'utf8'), 'previous hypotheses\n', 'decode: the earlier hyp.trn untouched')
  res = await runs.cmvnCompute
  stoppedCleanly(t, res, 'SIGINT', AT_ONCE('cmvn compute', 'SIGINT'))
  t.equal(readFileSync(p('stats.json'), 'utf8'), 'previous statistics\n', 'cmvn compute: the earlier JSON untouched')
  res = await runs.kaldiText
  stoppedCleanly(t, res, 'SIGTERM', AT_ONCE('cat', 'SIGTERM'))
  t.notOk(existsSync(p('feats.txt')), 'cat --format kaldi-text: no half-written text archive')
  res = await runs.hmmUpdate
  stoppedCleanly(t, res, 'SIGTERM', AT_ONCE('hmm-update', 'SIGTERM'))
  t.equal(readFileSync(p('hmm1.json'), 'utf8'), 'previous model\n', 'hmm-update: the earlier model untouched')
  res = await runs.connect
  stoppedCleanly(t, res, 'SIGTERM', AT_ONCE('connect-digits', 'SIGTERM'))
  t.notOk(existsSync(p('digits/train/wav.scp')), 'connect-digits: no data dir claimed')
  noLitter(t, p('digits/wav'))
  noLitter(t, D)
})

t.test(
  'RBM pre-training: SIGTERM keeps a checkpoint; a rerun says --resume; --resume ends as an uninterrupted run',
  async (t) => {
    const res = await runs.rbm
    stoppedCleanly(
      t,
      res,
      'SIGTERM',
      /SIGTERM: training stopped at rbm layer \d epoch \d, batch \d+; the checkpoint in .*teacher holds it and no model was written: run the same command with --resume to continue/,
    )
    t.notOk(existsSync(p('teacher/ktp.json')), 'no model claimed')
    const ck = readdirSync(p('teacher')).filter((f) => /^checkpoint\.rbm\.\d\.bin$/.test(f))
    t.equal(ck.length, 1, `the layer under way is checkpointed (${ck})`)
    const ref = await runs.rbmReference
    t.equal(ref.code, 0, 'the uninterrupted reference run')
    const again = await stopWhen([...TEACHER, '-o', p('teacher')], 'SIGTERM', () => new Promise(() => {}))
    t.equal(again.code, 2, 'a rerun without --resume refuses')
    t.match(
      again.stderr,
      /holds a checkpoint from an earlier, unfinished run with these options \(rbm layer \d, epoch \d, batch \d+\): pass --resume/,
    )
    const resumed = await stopWhen([...TEACHER, '-o', p('teacher'), '--resume'], 'SIGTERM', () => new Promise(() => {}))
    t.equal(resumed.code, 0, `--resume finishes (${resumed.stderr.slice(-200)})`)
    t.match(resumed.stderr, /RBM layer \d (resumed at epoch \d, batch \d+|restored from)/)
    t.ok(
      readFileSync(p('teacher/params.bin')).equals(readFileSync(p('teacher-ref/params.bin'))),
      'params.bin byte-identical to the uninterrupted run',
    )
  },
)

t.test('ktp run: SIGINT is passed to the step under way, no other step starts, the lock is released', async (t) => {
  const res = await runs.run
  stoppedCleanly(t, res, 'SIGINT', /ktp: error: ktp run: stopped by SIGINT; the steps under way kept their checkpoints/)
  t.match(res.stderr, /connect-digits +FAILED \(exit 130\)/, 'the step under way stopped by the same signal')
  t.notMatch(res.stderr, /(features|align)\S* +running/, 'no later step started')
  t.notOk(existsSync(p('run/.ktp-lock')), 'the output directory is unlocked')
})

t.test('EPIPE: decode | head -c 10 ends quietly', async (t) => {
  const r = sh(`${KTP} decode --hmm ${p('hmm.json')} --lm uniform ${p('scores.arrow')} | head -c 10`)
  t.equal(r.code, 0, r.stderr)
  t.equal(r.stdout.length, 10, 'head got its 10 bytes')
  t.notMatch(r.stderr, /error|EPIPE|\n\s+at /, 'no error, no stack trace')
})
