// Bad inputs to the training and inference commands (issue 17): each is refused before epoch 1 with
// one line naming the file, utterance and what was expected, or its bad utterances are named and
// counted ("done N, failed M", exit 1) — never a stack trace, never a model claimed from nothing.
// Tiny generated data (12 utterances of 4-dim features, 3 classes) and 1 epoch. The commands run
// in this process through yargs as the CLI runs them (same modules, handlers, error reporting and
// exit codes), stderr captured: a ktp process costs about a second of module loading, which a few
// cases pay on purpose (`ktp(...)`) to show the real CLI's behaviour.
import t, { type Test } from 'tap'
import yargs from 'yargs'
import { commands } from '../pipeline/cli/commands.js'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeSchema } from '../schemas/kinds.js'
import { makeUttBatch } from '../schemas/utterance.js'
import { BatchEncoder } from '../pipeline/io/arrow-encoder.js'
import { openArrow } from '../pipeline/io/arrow-source.js'
import { puller } from '../pipeline/io/pull.js'
import { uttId } from '../schemas/utterance.js'
import { CLI, ktp, rng, tmp } from './helpers.js'

const D = tmp('ktp-bad-train-')
const p = (f: string) => join(D, f)
const UTTS = Array.from({ length: 12 }, (_, i) => ({ utt: `u${String(i).padStart(2, '0')}`, frames: 30 + i }))

function writeArrow(path: string, schema: ReturnType<typeof makeSchema>, rows: Record<string, unknown>[]): void {
  const enc = new BatchEncoder(schema, 'file')
  const parts: Uint8Array[] = [...enc.begin()]
  for (const r of rows) parts.push(...enc.encode(makeUttBatch(schema, r as never)))
  parts.push(...enc.finish())
  writeFileSync(path, Buffer.concat(parts))
}

/** 4-dim (or `dim`) random features; `nan` utterances get a NaN at frame 2. */
function feats(file: string, o: { dim?: number; utts?: typeof UTTS; nan?: string[]; inf?: string[] } = {}): string {
  const dim = o.dim ?? 4
  const r = rng(7)
  const schema = makeSchema('features', { widths: { feats: dim }, metadata: { 'ktp.fingerprint': `fp-${dim}` } })
  writeArrow(
    p(file),
    schema,
    (o.utts ?? UTTS).map(({ utt, frames }) => {
      const f = Float32Array.from({ length: frames * dim }, () => r() * 2 - 1)
      if (o.nan?.includes(utt)) f[2 * dim + 1] = NaN
      if (o.inf?.includes(utt)) f[5 * dim] = -Infinity
      return { utt, feats: f }
    }),
  )
  return p(file)
}

/** Labels 0,1,2,0,… (3 classes declared); `bad` sets frame 3 of an utterance to a value. */
function labels(file: string, bad: Record<string, number> = {}): string {
  const schema = makeSchema('labels', { metadata: { 'ktp.num_classes': '3' } })
  writeArrow(
    p(file),
    schema,
    UTTS.map(({ utt, frames }) => {
      const l = Int32Array.from({ length: frames }, (_, i) => i % 3)
      if (bad[utt] !== undefined) l[3] = bad[utt]
      return { utt, labels: l }
    }),
  )
  return p(file)
}

async function uttsOf(path: string): Promise<string[]> {
  const a = await openArrow(path, [])
  const next = puller(a.stream())
  const out: string[] = []
  for (let b = await next(); b; b = await next()) out.push(uttId(b))
  await a.close()
  return out
}

/** Run `ktp ARGS` in this process: exit code and stderr (stdout is left alone: tap's). */
async function inproc(args: string[]): Promise<{ code: number | null; stderr: string }> {
  let stderr = ''
  const realErr = process.stderr.write
  process.stderr.write = ((c: string | Uint8Array, ...r: unknown[]) => {
    stderr += String(c)
    const cb = r.find((x) => typeof x === 'function') as (() => void) | undefined
    cb?.()
    return true
  }) as typeof process.stderr.write
  process.exitCode = undefined
  let code: number | undefined
  try {
    const entry = commands.find((c) => c.name === args[0])!
    await yargs(args)
      .scriptName('ktp')
      .strict()
      .fail((msg, e) => {
        if (e) throw e
        process.stderr.write(`ktp: usage error: ${msg}\n`)
        code = 2
      })
      .command(await entry.load())
      .parseAsync()
  } catch (e) {
    stderr += `ktp: internal error: ${(e as Error)?.stack ?? String(e)}\n`
    code = 2
  } finally {
    process.stderr.write = realErr
  }
  const exit = code ?? (process.exitCode === undefined ? 0 : Number(process.exitCode))
  process.exitCode = undefined
  return { code: exit, stderr }
}

const F = feats('f.arrow')
const L = labels('l.arrow')
const FAST = ['--max-epochs', '1', '--min-epochs', '0', '--context', '1', '--batch-size', '32', '--backend', 'cpu']
const DNN = ['--model', '{"type":"dnn","hidden":[8]}']
/** The defaults above, less any flag `args` gives itself. */
function withDefaults(args: string[]): string[] {
  const base = [...DNN, ...FAST]
  const out: string[] = []
  for (let i = 0; i < base.length; i += 2) if (!args.includes(base[i])) out.push(base[i], base[i + 1])
  return [...out, ...args]
}
const train = (args: string[], out: string) => inproc(['train', ...withDefaults(args), '-o', out])

/** A refusal: exit 2, one line on stderr naming what it should, no stack trace, no model written. */
function refused(t: Test, r: { code: number | null; stderr: string }, out: string, ...want: RegExp[]): void {
  t.equal(r.code, 2, 'exit 2')
  const lines = r.stderr
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('ktp: error:'))
  t.equal(lines.length, 1, `one error line: ${r.stderr.trim()}`)
  for (const w of want) t.match(lines[0] ?? '', w)
  t.notMatch(r.stderr, /internal error|\n\s+at /, 'no stack trace')
  t.notOk(existsSync(join(out, 'ktp.json')), 'no model written')
  t.notOk(existsSync(join(out, 'params.bin')), 'no weights written')
}

t.test('labels out of range (999, −1, C) are refused before epoch 1, naming utterance, frame and range', async (t) => {
  for (const [name, v] of [
    ['999', 999],
    ['-1', -1],
    ['C', 3],
  ] as const) {
    const out = p(`o-label-${name}`)
    const args = ['--feats', F, '--labels', labels(`l-${name}.arrow`, { u05: v })]
    // one of them through the real CLI process: its exit code and one-line error
    const r = name === '999' ? ktp(['train', ...DNN, ...FAST, ...args, '-o', out]) : await train(args, out)
    refused(t, r, out, new RegExp(`'u05' frame 3 has label ${v}, outside the valid range 0\\.\\.2`))
    t.notMatch(r.stderr, /epoch 1/, 'before epoch 1')
  }
})

t.test('features and labels with no common ids, or an empty features file: refused, counts given', async (t) => {
  const other = feats('f-other.arrow', { utts: UTTS.map((u) => ({ ...u, utt: `x${u.utt}` })) })
  let out = p('o-nocommon')
  refused(
    t,
    await train(['--feats', other, '--labels', L], out),
    out,
    /no training utterance has both features \(.*f-other\.arrow\) and labels \(.*l\.arrow\)/,
    /12 utterances, .*: 12, none in common/,
  )
  out = p('o-empty')
  refused(
    t,
    await train(['--feats', feats('f-empty.arrow', { utts: [] }), '--labels', L], out),
    out,
    /no training utterance has both features/,
    /f-empty\.arrow: 0 utterances/,
  )
  out = p('o-teacher-empty')
  refused(
    t,
    await inproc(['train-teacher', ...DNN, ...FAST, '--feats', p('f-empty.arrow'), '--labels', L, '-o', out]),
    out,
    /no training utterance has both features/,
  )
})

t.test('NaN/Inf features: training names the utterances, trains on the rest, done N failed M, exit 1', async (t) => {
  const out = p('o-nan')
  const r = await train(['--feats', feats('f-nan.arrow', { nan: ['u03'], inf: ['u07'] }), '--labels', L], out)
  t.equal(r.code, 1, 'exit 1: some utterances failed')
  t.match(r.stderr, /WARNING skipping 'u03': non-finite feature \(NaN or Inf\) at frame 2/)
  t.match(r.stderr, /WARNING skipping 'u07': non-finite feature \(NaN or Inf\) at frame 5/)
  t.match(r.stderr, /done 10, failed 2/)
  t.notMatch(r.stderr, /bad batches/, 'no batch was poisoned: the bad utterances never reached the trainer')
  t.ok(existsSync(join(out, 'ktp.json')), 'model written from the good utterances')
  const log = readFileSync(join(out, 'train.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
  t.ok(
    log.every((e: { train_loss?: number }) => e.train_loss === undefined || Number.isFinite(e.train_loss)),
    'finite loss',
  )
})

t.test('labels missing for some utterances: named, counted, exit 1', async (t) => {
  const out = p('o-missing')
  const extra = feats('f-extra.arrow', { utts: [...UTTS, { utt: 'zz-unlabelled', frames: 40 }] })
  const r = await train(['--feats', extra, '--labels', L], out)
  t.equal(r.code, 1)
  t.match(r.stderr, /skipping 'zz-unlabelled': no labels in .*l\.arrow/)
  t.match(r.stderr, /done 12, failed 1/)
})

t.test('ktp infer on NaN features fails those utterances by id and writes no NaN soft targets', async (t) => {
  const model = p('o-nan') // trained above on the good utterances
  for (const k of ['0', '2']) {
    const soft = p(`soft-${k}.arrow`)
    const r = await inproc(['infer', '--model', model, '--backend', 'cpu', p('f-nan.arrow'), '--top-k', k, '-o', soft])
    t.equal(r.code, 1, `top-k ${k}: exit 1`)
    t.match(r.stderr, /u03.*non-finite feature \(NaN or Inf\) at frame 2/)
    t.match(r.stderr, /u07.*non-finite feature/)
    t.match(r.stderr, /done 10, failed 2/)
    const written = await uttsOf(soft)
    t.same(
      written,
      UTTS.map((u) => u.utt).filter((u) => u !== 'u03' && u !== 'u07'),
      'only the finite utterances written',
    )
  }
})

t.test('a held-out file of another feature dim is refused before epoch 1', async (t) => {
  const out = p('o-heldout-dim')
  const r = await train(
    ['--feats', F, '--labels', L, '--heldout-feats', feats('f6.arrow', { dim: 6 }), '--heldout-labels', L],
    out,
  )
  refused(t, r, out, /--heldout-feats .*f6\.arrow: features of dim 6, but --feats .*f\.arrow has dim 4/)
  t.notMatch(r.stderr, /epoch 1/)
})

t.test('no held-out utterance: refused unless a fixed schedule is asked for', async (t) => {
  const out = p('o-noheld')
  refused(
    t,
    await train(['--feats', F, '--labels', L, '--heldout-fraction', '0'], out),
    out,
    /--heldout-fraction 0 holds out none of the 12 training utterances/,
  )
  const r = await train(['--feats', F, '--labels', L, '--heldout-fraction', '0', '--fixed-lr'], p('o-noheld-fixed'))
  t.equal(r.code, 0, r.stderr)
})

t.test('a model too large to build is refused with its parameter count, no stack trace', async (t) => {
  let out = p('o-huge-dnn')
  refused(
    t,
    await train(['--feats', F, '--labels', L, '--model', '{"type":"dnn","hidden":[1000000000]}'], out),
    out,
    /--model .*too large for 12 inputs and 3 classes: at least 1\.20e\+10 parameters .*choose smaller layers/,
  )
  out = p('o-huge-lstm')
  refused(
    t,
    await train(['--feats', F, '--labels', L, '--context', '0', '--model', '{"type":"lstm","cells":100000}'], out),
    out,
    /at least 4\.\d+e\+10 parameters/,
  )
})

t.test('model-config errors are one line naming --model', async (t) => {
  for (const [model, want] of [
    ['{"type":"dnn","hidden":[8],"x":1}', /--model: .*Unrecognized key: "x"/],
    ['{"type":"cnn"}', /--model: type: /],
    ['{"type":"dnn","hidden":[-3]}', /--model: hidden\.0: /],
    ['{"type":"dnn",', /--model: not valid JSON/],
    ['no/such/model.json', /--model: 'no\/such\/model\.json' is neither JSON nor an existing file/],
  ] as const) {
    const out = p('o-badmodel')
    refused(t, await train(['--feats', F, '--labels', L, '--model', model], out), out, want)
  }
})

t.test('options the mode or model does not read: --soft in baseline refused, others warned about', async (t) => {
  let out = p('o-baseline-soft')
  refused(
    t,
    await train(['--feats', F, '--labels', L, '--mode', 'baseline', '--soft', F, '--temperature', '5'], out),
    out,
    /--soft .*f\.arrow and --temperature 5 have no effect in --mode baseline \(hard labels only\)/,
  )
  out = p('o-ignored')
  const r = await train(['--feats', F, '--labels', L, '--temperature', '5', '--delay', '2', '--momentum', '0.5'], out)
  t.equal(r.code, 0, 'trains')
  t.match(r.stderr, /WARNING --temperature 5 has no effect in --mode baseline/)
  t.match(r.stderr, /WARNING --delay 2 has no effect on a frame model/)
  t.match(r.stderr, /WARNING --momentum 0\.5 has no effect with --optimizer sgd/)
  const teacher = await inproc([
    'train-teacher',
    ...DNN,
    ...FAST,
    ...['--feats', F, '--labels', L, '--rbm-lr', '0.1', '-o', p('o-teacher-ignored')],
  ])
  t.equal(teacher.code, 0)
  t.match(teacher.stderr, /WARNING --rbm-lr 0\.1 has no effect with --pretrain none/)
})

t.test('train-student --help: --model and --context described, the LSTM default, one line per --mode', async (t) => {
  const help = ktp(['train-student', '--help']).stdout.toString()
  t.match(help, /--model\s+model config as JSON, or a path to a JSON file/)
  t.match(help, /default: "\{"type":"lstm"/, 'the default shown is the one used: an LSTM')
  t.match(help, /--context\s+frame models \(dnn\): splice/)
  for (const m of ['baseline', 'kt', 'regularise', 'layerwise-kt']) t.match(help, new RegExp(`\\n\\s+${m}: \\S`))
  t.notMatch(help, /see above/)
})

t.test('no command help or example points at ../shared (a clone has no such folder)', async (t) => {
  const { readdirSync } = await import('node:fs')
  const root = join(import.meta.dirname, '..')
  const files = [
    ...readdirSync(join(root, 'stages'), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => join(root, 'stages', d.name, 'command.ts'))
      .filter((f) => existsSync(f)),
    ...readdirSync(join(root, 'pipeline', 'cli')).map((f) => join(root, 'pipeline', 'cli', f)),
  ]
  t.ok(files.length > 20, `${files.length} command files`)
  for (const f of files) t.notMatch(readFileSync(f, 'utf8'), /\.\.\/shared/, f)
})

t.test('a rerun that finds a checkpoint resumes with --resume, or says how to start afresh', async (t) => {
  const out = p('o-rerun')
  const args = ['--feats', F, '--labels', L]
  t.equal((await train(args, out)).code, 0)
  const { rmSync, statSync, truncateSync } = await import('node:fs')
  // as if killed after its last checkpoint, before the model was written
  rmSync(join(out, 'ktp.json'))
  rmSync(join(out, 'params.bin'))
  let r = await train(args, out)
  refused(
    t,
    r,
    out,
    /o-rerun holds a checkpoint from an earlier, unfinished run with these options \(ce, epoch \d+, batch \d+\): pass --resume to continue it, or --force to discard it and start afresh/,
  )
  r = await train([...args, '--lr', '0.1'], out)
  refused(t, r, out, /holds a checkpoint \(checkpoint\.ce\.bin\) from an unfinished run with other options or data/)
  r = await train([...args, '--resume'], out)
  t.equal(r.code, 0, 'resumed')
  t.ok(existsSync(join(out, 'ktp.json')))
  // a finished model's leftover checkpoint does not block retraining it with other options
  r = await train([...args, '--lr', '0.1'], out)
  t.equal(r.code, 0, 'stale finished model retrained')
  t.match(r.stderr, /discarding .*checkpoint\.ce\.bin \(left by the earlier, finished model\)/)
  // a truncated checkpoint is never resumed, and says so
  rmSync(join(out, 'ktp.json'))
  rmSync(join(out, 'params.bin'))
  const ck = join(out, 'checkpoint.ce.bin')
  truncateSync(ck, statSync(ck).size - 100)
  r = await train([...args, '--lr', '0.1', '--resume'], out)
  refused(
    t,
    r,
    out,
    /checkpoint\.ce\.bin: a damaged checkpoint \(\d+ bytes, its header describes \d+\), which cannot be resumed: pass --force/,
  )
  r = await train([...args, '--lr', '0.1', '--force'], out)
  t.equal(r.code, 0, '--force starts afresh')
  t.match(r.stderr, /discarding .*checkpoint\.ce\.bin \(damaged\)/)
})

t.test(
  'SIGTERM/SIGINT mid-training: stops at a step boundary with a whole checkpoint, exit 143/130, then --resume',
  async (t) => {
    const { spawn } = await import('node:child_process')
    const { peekCheckpoint } = await import('../stages/train/checkpoint.js')
    const many = Array.from({ length: 60 }, (_, i) => ({ utt: `u${String(i).padStart(2, '0')}`, frames: 100 }))
    const bigF = feats('f-big.arrow', { utts: many })
    const schema = makeSchema('labels', { metadata: { 'ktp.num_classes': '3' } })
    writeArrow(
      p('l-big.arrow'),
      schema,
      many.map(({ utt, frames }) => ({ utt, labels: Int32Array.from({ length: frames }, (_, i) => i % 3) })),
    )
    for (const [sig, code] of [
      ['SIGTERM', 143],
      ['SIGINT', 130],
    ] as const) {
      const out = p(`o-${sig}`)
      const args = [
        ...[
          'train',
          ...DNN,
          '--context',
          '1',
          '--backend',
          'cpu',
          '--batch-size',
          '4',
          '--fixed-lr',
          '--max-epochs',
          '2',
        ],
        ...['--feats', bigF, '--labels', p('l-big.arrow'), '-o', out],
      ]
      const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
      let stderr = ''
      child.stderr.on('data', (c) => (stderr += c))
      // signal once training is under way: the first progress record (50 steps) is in train.jsonl
      const poll = setInterval(() => {
        if (existsSync(join(out, 'train.jsonl'))) {
          clearInterval(poll)
          child.kill(sig)
        }
      }, 20)
      const exit = await new Promise<number | null>((resolve) => child.on('close', resolve))
      clearInterval(poll)
      t.equal(exit, code, `${sig}: exit ${code}`)
      t.match(stderr, new RegExp(`${sig} received: stopping at the end of this training step`))
      t.match(
        stderr,
        /training stopped at ce epoch 1, batch \d+; the checkpoint in .* holds it and no model was written: run the same command with --resume to continue/,
      )
      t.notMatch(stderr, /internal error|\n\s+at /)
      t.notOk(existsSync(join(out, 'ktp.json')), 'no model claimed')
      const ck = peekCheckpoint<{ epoch: number; skip: number }>(join(out, 'checkpoint.ce.bin'))
      t.ok(ck.whole, 'the checkpoint is whole')
      t.ok(
        ck.header && ck.header.epoch === 0 && ck.header.skip >= 50,
        `stopped inside epoch 1 after step ${ck.header?.skip}`,
      )
      if (sig === 'SIGTERM') {
        const again = await inproc([...args, '--resume'])
        t.equal(again.code, 0, 'resumed to the end')
        t.ok(existsSync(join(out, 'ktp.json')), 'model written')
      }
    }
  },
)
