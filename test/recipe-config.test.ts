import t from 'tap'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { FSDD_FULL, FSDD_QUICK, fsddConfigSchema } from '../pipeline/recipes/fsdd-config.js'
import { type RecipeChoice, configureRecipe } from '../pipeline/recipes/select.js'
import { STUDENT_EXTRA_FLAGS, STUDENT_FLAGS, studentConfigSchema } from '../pipeline/recipes/systems-config.js'
import { TIMIT_FULL, TIMIT_QUICK, timitConfigSchema } from '../pipeline/recipes/timit-config.js'
import { ktp, tmp } from './helpers.js'

const choice = (c: Partial<RecipeChoice> = {}): RecipeChoice => ({ quick: true, set: [], ...c })

/** The message `f` throws ('' if it does not). */
function failure(f: () => unknown): string {
  try {
    f()
    return ''
  } catch (err) {
    return (err as Error).message
  }
}

t.test('the built-in configs pass their own schema unchanged', async (t) => {
  t.same(fsddConfigSchema.parse(FSDD_FULL), FSDD_FULL)
  t.same(fsddConfigSchema.parse(FSDD_QUICK), FSDD_QUICK)
  t.same(timitConfigSchema.parse(TIMIT_FULL), TIMIT_FULL)
  t.same(timitConfigSchema.parse(TIMIT_QUICK), TIMIT_QUICK)
  const c = configureRecipe(
    'fsdd',
    choice({ seeds: 2, set: ['students.lstm-kt.temperature=4', 'teacher.hidden=[64]'] }),
  )
  t.same(c.config.seeds, [1, 2])
  t.equal(c.config.students['lstm-kt']?.temperature, 4)
  t.same(c.config.teacher.hidden, [64])
})

t.test('timit has a configuration of its own: no fsdd field in it, and none accepted', async (t) => {
  t.same(Object.keys(TIMIT_FULL).sort(), [
    'decode',
    'features',
    'seeds',
    'soft',
    'split',
    'student',
    'students',
    'teacher',
  ])
  const cfg = configureRecipe('timit', choice({ testFraction: 0.25 })).config as Record<string, unknown>
  for (const fsddOnly of ['connect', 'hmm', 'align', 'dataSeed']) t.notOk(fsddOnly in cfg, `no ${fsddOnly}`)
  t.same(cfg.split, { devFraction: 0.1, testFraction: 0.25 }, '--test-fraction lands in the timit split')
  t.equal(
    failure(() => configureRecipe('timit', choice({ set: ['connect.testSpeakers=george'] }))),
    "--set connect.testSpeakers=george: unknown field 'connect' (expected one of: seeds, teacher, soft, student, students, decode, optimiserRates, split, features)",
  )
})

t.test('bad values are one-line errors naming the --set, the key and what was expected', async (t) => {
  const err = (...set: string[]) => failure(() => configureRecipe('fsdd', choice({ set })))
  t.equal(
    err('students.lstm-kt.temprature=4'),
    "--set students.lstm-kt.temprature=4: unknown field 'students.lstm-kt.temprature' (did you mean 'temperature'?)",
  )
  t.equal(err('student.temperature=-5'), '--set student.temperature=-5: expected a number > 0, got -5')
  t.equal(err('student.temperature=1e400'), '--set student.temperature=1e400: expected a finite number, got Infinity')
  t.equal(err('student.alpha=1.5'), '--set student.alpha=1.5: expected a number ≤ 1, got 1.5')
  t.equal(err('seeds=abc'), '--set seeds=abc: expected a list, got "abc"')
  t.equal(err('seeds=[1,1]'), '--set seeds=[1,1]: expected distinct seeds, got [1,1]')
  t.equal(
    err('teacher.hidden=[128,"x"]'),
    '--set teacher.hidden=[128,"x"]: teacher.hidden.1: expected a number, got "x"',
  )
  t.equal(err('student.chunkLength=2.5'), '--set student.chunkLength=2.5: expected an integer, got 2.5')
  t.equal(
    err('student.optimizer=rmsprop'),
    '--set student.optimizer=rmsprop: expected one of "sgd", "momentum", "adam", got "rmsprop"',
  )
  t.equal(
    err('students.lstm-kt2.temperature=4'),
    "--set students.lstm-kt2.temperature=4: unknown field 'students.lstm-kt2' (did you mean 'lstm-kt'?)",
  )
  t.equal(err('teacher={}').split('; ').length, 3, 'several problems: the first three, on one line')
  t.match(err('teacher={}'), /^--set teacher=\{\}: teacher\.hidden: expected a list, got nothing; .* \(and \d+ more\)$/)
  t.equal(err('student.temperature'), "--set: expected KEY=VALUE, got 'student.temperature'")
  t.equal(
    err('student..temperature=2'),
    "--set student..temperature=2: '' is not a config field (expected KEY.KEY…=VALUE)",
  )
  t.equal(err('student.cells.x=2'), "--set student.cells.x=2: 'student.cells' is not an object in the config")
})

t.test('--set cannot reach Object.prototype, nor can a --config file', async (t) => {
  for (const set of ['__proto__.polluted=1', 'constructor.prototype.polluted=1', 'students.__proto__.polluted=1']) {
    t.match(
      failure(() => configureRecipe('fsdd', choice({ set: [set] }))),
      /is not a config field/,
      set,
    )
  }
  const file = join(tmp('ktp-config-'), 'proto.json')
  writeFileSync(file, JSON.stringify(FSDD_QUICK).replace('{', '{"__proto__":{"polluted":1},'))
  t.equal(
    failure(() => configureRecipe('fsdd', choice({ config: file }))),
    `--config ${file}: unknown field '__proto__' (expected one of: ${Object.keys(fsddConfigSchema.shape).join(', ')})`,
  )
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched')
})

t.test('a --config file is the whole config: checked like the built-in one', async (t) => {
  const dir = tmp('ktp-config-')
  const good = join(dir, 'good.json')
  writeFileSync(good, JSON.stringify({ ...FSDD_QUICK, seeds: [7] }))
  t.same(configureRecipe('fsdd', choice({ config: good })).config.seeds, [7])
  const partial = join(dir, 'partial.json')
  const { student, ...rest } = FSDD_QUICK
  writeFileSync(partial, JSON.stringify({ ...rest, student: { ...student, lr: undefined } }))
  t.equal(
    failure(() => configureRecipe('fsdd', choice({ config: partial }))),
    `--config ${partial}: student.lr: expected a number, got nothing`,
  )
  t.equal(
    failure(() => configureRecipe('fsdd', choice({ config: partial, set: ['student.lr=0.1'] }))),
    '',
    'a --set completes it',
  )
  writeFileSync(join(dir, 'bad.json'), '{"seeds": [1,')
  t.match(
    failure(() => configureRecipe('fsdd', choice({ config: join(dir, 'bad.json') }))),
    /bad\.json: not valid JSON/,
  )
  t.equal(
    failure(() => configureRecipe('fsdd', choice({ config: join(dir, 'none.json') }))),
    `--config: no such file '${join(dir, 'none.json')}'`,
  )
  t.equal(
    failure(() => configureRecipe('fsdd', choice({ config: good, set: [] }))),
    '',
  )
  t.equal(
    failure(() => configureRecipe('nope', choice())),
    "unknown recipe 'nope' (built in: fsdd, timit)",
  )
})

t.test('every student setting reaches train-student: the architecture, the fraction, or a flag', async (t) => {
  const passed = new Set<string>(['model', 'cells', 'layers', 'dataFraction', ...STUDENT_FLAGS, ...STUDENT_EXTRA_FLAGS])
  t.same(
    Object.keys(studentConfigSchema.shape).filter((k) => !passed.has(k)),
    [],
  )
})

t.test('ktp run and ktp sweep refuse a bad config with exit 2 before anything runs, --dry-run too', async (t) => {
  const out = join(tmp('ktp-config-cli-'), 'run')
  for (const args of [
    ['run', 'fsdd', '--quick', '--out', out, '--set', 'students.lstm-kt.temprature=4'],
    ['run', 'fsdd', '--quick', '--out', out, '--dry-run', '--set', 'student.temperature=-5'],
    ['sweep', 'fsdd', '--quick', '--out', out, '--dry-run', '--set', '__proto__.polluted=1'],
    ['run', 'timit', '--quick', '--out', out, '--data', out, '--set', 'hmm.states=3'],
  ]) {
    const r = ktp(args)
    t.equal(r.code, 2, args.join(' '))
    t.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr.trim()}`)
    t.match(r.stderr, /^ktp: error: --set /)
  }
  t.notOk(existsSync(out), 'nothing was run or written')
})

t.test('features.cmvn: global (the default) or per speaker, per split from its own speakers', async (t) => {
  const names = (cmvn?: string) =>
    configureRecipe('fsdd', choice({ set: cmvn ? [`features.cmvn=${cmvn}`] : [] }))
      .prep('/corpus', '/out')
      .steps.map((s) => s.name)
      .filter((n) => n.startsWith('cmvn'))
  t.same(names(), ['cmvn-stats', 'cmvn-train', 'cmvn-dev', 'cmvn-test'], 'global: one set of training statistics')
  t.same(names('global'), names(), 'global said out loud: the same steps')
  const speaker = configureRecipe('fsdd', choice({ set: ['features.cmvn=speaker'] })).prep('/corpus', '/out')
  const stats = speaker.steps.filter((s) => s.name.startsWith('cmvn-stats-'))
  t.same(
    stats.map((s) => s.name),
    ['cmvn-stats-train', 'cmvn-stats-dev', 'cmvn-stats-test'],
  )
  const test = stats.find((s) => s.name === 'cmvn-stats-test')!
  t.match(test.cmd!.join(' '), /--mode speaker --data \/out\/data\/test/, "the test speakers' own statistics")
  t.match(
    failure(() => configureRecipe('fsdd', choice({ set: ['features.cmvn=utterance'] }))),
    /features\.cmvn=utterance: expected one of "global", "speaker"/,
  )
})
