import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadCheckpoint } from '../stages/train/checkpoint.js'
import { CLI, ROOT, ktp, tmp } from './helpers.js'

/**
 * Issue 4's acceptance on a tiny real task: connected digits from the bundled FSDD (30 recordings
 * per speaker), fbank + CMVN, whole-word digit HMMs (3 states + 3 silence states = 33 classes),
 * flat-start alignment inside the known digit spans; then real `ktp train-teacher` /
 * `ktp train-student` / `ktp train` (a TDNN) runs, an RBM pre-training run, and kill -9 + --resume.
 */
const D = tmp('ktp-train-cli-')
const p = (...xs: string[]) => join(D, ...xs)
const run = (args: string[]) => {
  const r = ktp(args)
  if (r.code !== 0) throw new Error(`ktp ${args.join(' ')} exited ${r.code}:\n${r.stderr}`)
  return r
}

const t0 = Date.now()
run([
  'connect-digits',
  join(ROOT, 'fixtures', 'fsdd'),
  '-o',
  p('data'),
  '--max-per-speaker',
  '30',
  '--test-speakers',
  'george',
  '--dev-speakers',
  'lucas',
])
for (const s of ['train', 'dev'])
  run(['features', p('data', s), '--dither', '0', '--num-mel-bins', '23', '-o', p(`${s}.raw.arrow`), '--quiet'])
run(['cmvn', 'compute', p('train.raw.arrow'), '--norm-vars', '-o', p('cmvn.json')])
for (const s of ['train', 'dev'])
  run(['cmvn', 'apply', '--stats', p('cmvn.json'), p(`${s}.raw.arrow`), '-o', p(`${s}.arrow`), '--quiet'])
run([
  'hmm-init',
  '--whole-word-digits',
  '--states',
  '3',
  '--silence',
  'sil',
  '--silence-states',
  '3',
  '-o',
  p('hmm0.json'),
])
for (const s of ['train', 'dev']) {
  run([
    'align',
    '--hmm',
    p('hmm0.json'),
    '--text',
    p('data', s, 'text'),
    '--flat-start',
    '--feats',
    p(`${s}.arrow`),
    '--ctm',
    p('data', s, 'words.ctm'),
    '-o',
    p(`ali0.${s}.arrow`),
    '--quiet',
  ])
}
const classes = readFileSync(p('hmm0.pdfs.txt'), 'utf8').trim().split('\n').length
const chance = 100 / classes
t.comment(
  `data prepared in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${classes} classes, chance ${chance.toFixed(2)}%`,
)

const common = [
  '--feats',
  p('train.arrow'),
  '--labels',
  p('ali0.train.arrow'),
  '--heldout-feats',
  p('dev.arrow'),
  '--heldout-labels',
  p('ali0.dev.arrow'),
  '--backend',
  'wasm',
]
const dnn = [
  '--model',
  '{"type":"dnn","hidden":[64],"activation":"sigmoid"}',
  '--context',
  '2',
  '--batch-size',
  '64',
  '--lr',
  '0.5',
]
type Meta = {
  training: {
    epochs: { heldout_accuracy: number; accepted: boolean }[]
    rbm?: { layer: number; epoch: number; reconstruction_error: number }[]
  }
}
const meta = (dir: string) => JSON.parse(readFileSync(join(dir, 'ktp.json'), 'utf8')) as Meta
const best = (m: Meta) => Math.max(...m.training.epochs.filter((e) => e.accepted).map((e) => e.heldout_accuracy))

t.test('train-teacher: a small DNN, 2 epochs, on 2 workers, well above chance on the dev speaker', async (t) => {
  const r = run([
    'train-teacher',
    ...common,
    ...dnn,
    '--max-epochs',
    '2',
    '--min-epochs',
    '2',
    '--workers',
    '2',
    '-o',
    p('dnn'),
  ])
  const acc = best(meta(p('dnn')))
  t.comment(`DNN held-out frame accuracy ${acc.toFixed(2)}% (chance ${chance.toFixed(2)}%)`)
  t.ok(acc > 3 * chance, `held-out ${acc.toFixed(2)}% > 3 × chance`)
  t.match(r.stderr, /finetune epoch 2/)
})

t.test('train-student --mode baseline: a tiny LSTM, 2 epochs, well above chance', async (t) => {
  run([
    'train-student',
    ...common,
    '--mode',
    'baseline',
    '--model',
    '{"type":"lstm","cells":32}',
    '--lr',
    '1',
    '--fixed-lr',
    '--max-epochs',
    '2',
    '--chunks-per-batch',
    '4',
    '--chunk-length',
    '20',
    '-o',
    p('lstm'),
  ])
  const acc = best(meta(p('lstm')))
  t.comment(`LSTM held-out frame accuracy ${acc.toFixed(2)}% (chance ${chance.toFixed(2)}%)`)
  t.ok(acc > 3 * chance, `held-out ${acc.toFixed(2)}% > 3 × chance`)
})

t.test('ktp train --model tdnn: a model type added as one registry file trains and infers', async (t) => {
  const r = run([
    'train',
    ...common,
    '--model',
    '{"type":"tdnn","hidden":[64,64],"offsets":[[-2,-1,0,1,2],[-3,0,3]]}',
    '--lr',
    '0.1',
    '--fixed-lr',
    '--max-epochs',
    '2',
    '--chunks-per-batch',
    '4',
    '--chunk-length',
    '20',
    '-o',
    p('tdnn'),
  ])
  t.match(r.stderr, /ce epoch 2/, "ktp train's baseline phase is named ce")
  const acc = best(meta(p('tdnn')))
  t.comment(`TDNN held-out frame accuracy ${acc.toFixed(2)}% (chance ${chance.toFixed(2)}%)`)
  t.ok(acc > 3 * chance, `held-out ${acc.toFixed(2)}% > 3 × chance`)
  const inf = run(['infer', '--model', p('tdnn'), p('dev.arrow'), '--top-k', '0', '-o', p('tdnn-dev.arrow')])
  t.match(inf.stderr, /done 10, failed 0/, 'ktp infer reads it as a chunk model (whole utterances)')
})

t.test('RBM pre-training: reconstruction error falls over epochs on real features', async (t) => {
  run([
    'train-teacher',
    ...common,
    ...dnn,
    '--pretrain',
    'rbm',
    '--rbm-epochs',
    '2',
    '--max-epochs',
    '1',
    '--min-epochs',
    '1',
    '-o',
    p('dnn-rbm'),
  ])
  const rbm = meta(p('dnn-rbm')).training.rbm ?? []
  const errs = rbm.filter((r) => r.layer === 1).map((r) => r.reconstruction_error)
  t.comment(`Gaussian-Bernoulli RBM reconstruction error by epoch: ${errs.map((e) => e.toFixed(4)).join(' → ')}`)
  t.equal(errs.length, 4, 'the Gaussian layer gets twice --rbm-epochs')
  t.ok(errs[errs.length - 1] < errs[0], 'last epoch below the first')
  t.ok(
    errs.every((e, i) => i === 0 || e <= errs[i - 1] * 1.02),
    'no epoch clearly worse than the one before',
  )
})

t.test('kill -9 mid-training, then --resume: params.bin equals an uninterrupted run byte for byte', async (t) => {
  const args = (out: string) => [
    'train-teacher',
    ...common,
    ...dnn,
    '--max-epochs',
    '2',
    '--min-epochs',
    '2',
    '--fixed-lr',
    '--workers',
    '2',
    '--checkpoint-minutes',
    '0.001',
    '-o',
    out,
  ]
  run(args(p('whole')))
  const out = p('killed')
  const ck = join(out, 'checkpoint.finetune.bin')
  const child = spawn(process.execPath, [CLI, ...args(out)], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
  const signal = await new Promise<NodeJS.Signals | null>((resolve) => {
    const poll = setInterval(() => {
      if (existsSync(ck)) {
        clearInterval(poll)
        child.kill('SIGKILL')
      }
    }, 20)
    child.on('exit', (_code, sig) => {
      clearInterval(poll)
      resolve(sig)
    })
  })
  t.equal(signal, 'SIGKILL', 'killed while training (after its first checkpoint)')
  t.notOk(existsSync(join(out, 'params.bin')), 'no model written yet')
  const h = loadCheckpoint<{ epoch: number; skip: number }>(ck)!.header
  t.comment(
    `killed with a checkpoint at epoch ${h.epoch + 1}, batch ${h.skip}; ${stderr.trim().split('\n').length} log lines`,
  )
  const again = run([...args(out), '--resume'])
  t.match(again.stderr, /finetune epoch 2/)
  t.ok(
    readFileSync(join(out, 'params.bin')).equals(readFileSync(p('whole', 'params.bin'))),
    'params.bin byte-identical',
  )
})
