// The training methods of ktp train and ktp train-student: one mode vocabulary, options declared
// once, and model keys (fingerprints) unchanged from before the two commands shared their code.
import t from 'tap'
import { parseOptions } from '../pipeline/io/options.js'
import { studentOptions } from '../stages/train-student/stage.js'
import { TRAIN, TRAIN_STUDENT, runMethod } from '../stages/train/method.js'
import { TRAINING_MODES, methodOptions, methodTrainOptions, trainOptions } from '../stages/train/options.js'
import { trainingKeys } from '../stages/train/session.js'
import { ktp, tmp } from './helpers.js'

const files = { feats: 'f.arrow', labels: 'l.arrow' }

t.test('one mode vocabulary for both commands; ce is the old spelling of baseline', async (t) => {
  for (const schema of [methodTrainOptions, studentOptions]) {
    for (const mode of TRAINING_MODES) t.equal(parseOptions(schema, { ...files, mode }).mode, mode)
    t.equal(parseOptions(schema, { ...files, mode: 'ce' }).mode, 'baseline')
    t.throws(
      () => parseOptions(schema, { ...files, mode: 'distil' }),
      /--mode: .*"baseline"\|"kt"\|"regularise"\|"layerwise-kt"\|"ce".*, got "distil"/,
    )
  }
  // the commands differ in defaults only
  const train = parseOptions(methodTrainOptions, files)
  const student = parseOptions(studentOptions, files)
  t.match(train, { mode: 'baseline', context: 5, model: /"type":"dnn"/ })
  t.match(student, { mode: 'kt', context: 0, model: '{"type":"lstm","cells":256,"layers":2}' })
  t.same(Object.keys(student).sort(), Object.keys(train).sort(), 'the same options')
})

t.test('shared options are declared once', async (t) => {
  for (const k of ['temperature', 'alpha', 'soft', 'ktLr', 'ktMaxEpochs', 'ktMinEpochs', 'layerEpochs'] as const) {
    t.equal(methodTrainOptions.shape[k], methodOptions.shape[k], `ktp train --${k}`)
    t.equal(studentOptions.shape[k], methodOptions.shape[k], `ktp train-student --${k}`)
  }
  for (const k of ['lr', 'maxEpochs', 'chunkLength', 'optimizer', 'dataFraction'] as const)
    t.equal(studentOptions.shape[k], trainOptions.shape[k], `--${k}`)
})

t.test('model keys are those of the commands before they shared their code', async (t) => {
  // golden fingerprints computed with the code of commit 0837dc4 (separate runTrain / runTrainStudent)
  const fp = (stage: string, key: Record<string, unknown>, inputs: Record<string, string>) =>
    trainingKeys(stage, key, inputs).fingerprint
  const inputs = { feats: 'F1', labels: 'L1' }
  const withSoft = { ...inputs, soft: 'S1' }
  const dnn = { ...files, model: '{"type":"dnn","hidden":[8]}' }
  const train = (o: Record<string, unknown>) => parseOptions(methodTrainOptions, o)
  const student = (o: Record<string, unknown>) => parseOptions(studentOptions, o)
  t.equal(fp('train', TRAIN.key(train(dnn)), inputs), '733ac48bfbd3c9c194a6ea01b82d7721', 'train baseline')
  t.equal(fp('train', TRAIN.key(train({ ...dnn, mode: 'ce' })), inputs), '733ac48bfbd3c9c194a6ea01b82d7721')
  t.equal(
    fp(
      'train',
      TRAIN.key(train({ ...dnn, mode: 'regularise', soft: 's.arrow', temperature: 3, alpha: 0.25 })),
      withSoft,
    ),
    '6f648e61fbe74c3ff3fbbe3929d67fae',
    'train regularise',
  )
  t.equal(
    fp(
      'train-student',
      TRAIN_STUDENT.key(student({ ...files, mode: 'kt', soft: 's.arrow', temperature: 4 })),
      withSoft,
    ),
    'a09fa48f0fbbc1a7a4fa2c2fd8e26187',
    'train-student kt',
  )
  t.equal(
    fp('train-student', TRAIN_STUDENT.key(student({ ...files, mode: 'baseline', soft: 's.arrow' })), inputs),
    '246653d6c81e5ba6005711d36021c126',
    'train-student baseline (its unused --soft left out)',
  )
  // ktp train keys what its method reads: kt now fine-tunes after KT, so its key holds the KT schedule
  t.match(TRAIN.key(train({ ...dnn, mode: 'kt', soft: 's.arrow' })), { mode: 'kt', ktLr: 0.008, ktMaxEpochs: 10 })
  t.notOk('alpha' in TRAIN.key(train({ ...dnn, mode: 'kt', soft: 's.arrow' })), 'kt does not read alpha')
})

t.test('usage errors come before any file is read', async (t) => {
  const cli = { output: 'unused', resume: false, force: false }
  const o = (x: Record<string, unknown>) => parseOptions(methodTrainOptions, { ...files, ...x })
  const log = () => {}
  await t.rejects(runMethod(TRAIN, o({ mode: 'kt' }), cli, log), {
    code: 'usage',
    message: '--mode kt needs --soft (soft targets from ktp infer)',
  })
  await t.rejects(runMethod(TRAIN, o({ mode: 'layerwise-kt', soft: 's.arrow' }), cli, log), {
    code: 'usage',
    message:
      /--mode layerwise-kt needs a --model that grows layer by layer \(lstm\|lstmp\|gru\|rnn\) with at least 2 layers, got \{"type":"dnn"/,
  })
  await t.rejects(
    runMethod(TRAIN, o({ mode: 'layerwise-kt', soft: 's.arrow', model: '{"type":"lstm","cells":4}' }), cli, log),
    { code: 'usage', message: /at least 2 layers/ },
  )
  await t.rejects(runMethod(TRAIN, o({ model: '{"type":"cnn"}' }), cli, log), {
    code: 'usage',
    message: /--model: type: Invalid discriminator value. Expected 'dnn' \| 'lstm' \| 'lstmp' \| 'gru' \| 'rnn'/,
  })
})

t.test('a recipe student can be any registered model type, checked at plan time', async (t) => {
  const out = tmp('ktp-student-model-')
  const tdnn = '{"type":"tdnn","hidden":[64,64],"offsets":[[-2,0,2],[-3,0,3]]}'
  const plan = ktp(['run', 'fsdd', '--quick', '--dry-run', '--out', out, '--set', `student.model=${tdnn}`])
  t.equal(plan.code, 0, `planned${plan.code ? `: ${plan.stderr}` : ''}`)
  const kt = `${plan.stdout}${plan.stderr}`.split('\n').find((l) => /^\s*lstm-kt\.s1 /.test(l)) ?? ''
  t.match(kt, `ktp train-student `)
  t.match(kt, ` --model {"type":"tdnn","hidden":[64,64],"offsets":[[-2,0,2],[-3,0,3]],"activation":"relu"} `)
  const bad = ktp(['run', 'fsdd', '--quick', '--dry-run', '--out', out, '--set', 'student.model={"type":"tdnn"}'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /^ktp: error: --set student\.model=\{"type":"tdnn"\}: student\.model\.hidden: /)
})
