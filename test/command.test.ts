// The command contract (pipeline/io/command.ts): options, CLI options and positionals are zod,
// parsed into one typed object for `run`; a lone `-` survives yargs; help and errors name the
// options; and a stage declared with defineArrowStage runs end to end through stdin/stdout with
// the runner's promises (fingerprint, build key, up-to-date, shards, exit codes 0/1/2).
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { RecordBatchReader } from 'apache-arrow'
import yargs from 'yargs'
import { z } from 'zod'
import { ROOT, tmp, uttList, writeFeatures } from './helpers.js'
import {
  STDIO_ARG,
  defineArrowStage,
  defineCommand,
  parseArgs,
  runOptions,
  type CommandArgs,
} from '../pipeline/io/command.js'
import { yargsOptions, yargsPositionals } from '../pipeline/io/options.js'
import { commands } from '../pipeline/cli/commands.js'
import { studentOptions } from '../stages/train-student/stage.js'
import { RECIPES } from '../pipeline/recipes/select.js'
import { KtpError } from '../schemas/errors.js'
import { fingerprint } from '../schemas/fingerprint.js'
import { getMatrix, uttId } from '../schemas/utterance.js'

const toyOptions = z.object({
  frameShift: z.number().positive().default(10).describe('frame shift in ms'),
  mode: z.enum(['a', 'b']).default('a').describe('a mode'),
  normVars: z.boolean().default(false).describe('a switch'),
  utts: z.string().optional().describe('a list'),
})
const toyCli = { hmm: z.string().describe('HMM model file'), ...runOptions }
const toyPositionals = { inputs: z.array(z.string()).describe('inputs, or - for stdin') }

t.test('parseArgs: one typed object (stage options apart, CLI options and positionals flat)', async (t) => {
  // camelCase keys, as yargs hands them over
  const argv = { frameShift: 5, normVars: true, hmm: 'h.json', shard: '2/4', inputs: ['a.arrow', '-'], force: true }
  const a: CommandArgs<typeof toyOptions, typeof toyCli, typeof toyPositionals> = parseArgs(
    toyOptions,
    toyCli,
    toyPositionals,
    argv,
  )
  t.same(a, {
    options: { frameShift: 5, mode: 'a', normVars: true },
    hmm: 'h.json',
    output: '-',
    shard: { index: 2, count: 4 },
    force: true,
    quiet: false,
    inputs: ['a.arrow', '-'],
  })
  // the types follow the schemas (checked by tsc on test/)
  const shift: number = a.options.frameShift
  const utts: string | undefined = a.options.utts
  const first: string = a.inputs[0]
  t.equal(shift + (utts ?? '').length + first.length, 12)
  t.equal(parseArgs(toyOptions, toyCli, toyPositionals, { hmm: 'h', inputs: [] }).shard, null, 'no --shard: null')
})

t.test('parseArgs: bad values are usage errors naming the option or positional', async (t) => {
  const bad = (argv: Record<string, unknown>) => {
    try {
      parseArgs(toyOptions, toyCli, { input: z.string().min(1) }, argv)
    } catch (err) {
      t.ok(err instanceof KtpError && err.code === 'usage', 'a usage error')
      return (err as Error).message
    }
    return 'no error'
  }
  t.equal(bad({ frameShift: -3, hmm: 'h', input: 'x' }), '--frame-shift: expected number to be >0, got -3')
  t.equal(bad({ mode: 'c', hmm: 'h', input: 'x' }), '--mode: expected one of "a"|"b", got "c"')
  t.equal(bad({ input: 'x' }), '--hmm: required, not given')
  t.equal(bad({ hmm: 'h', input: '' }), '<input>: expected string to have >=1 characters, got ""')
  t.equal(bad({ hmm: 'h', input: 'x', shard: '5/4' }), "expected --shard i/N with 1 ≤ i ≤ N, got '5/4'")
})

t.test('yargs definitions from the schemas: types, defaults, choices, required', async (t) => {
  const o = yargsOptions({ ...toyOptions.shape, ...toyCli }, 'G:')
  t.match(o['frame-shift'], { type: 'number', default: 10, describe: 'frame shift in ms', group: 'G:' })
  t.match(o.mode, { type: 'string', choices: ['a', 'b'], default: 'a' })
  t.match(o['norm-vars'], { type: 'boolean', default: false })
  t.equal(o.utts.demandOption, undefined, 'optional: not demanded')
  t.equal(o.hmm.demandOption, '--hmm: HMM model file', 'required: demanded, the message says what it is')
  t.match(o.shard, { type: 'string', describe: /shard i of N/ }, 'a parsed option takes its raw string')
  t.same(yargsPositionals({ ...toyPositionals, scores: z.string().default('-').describe('s') }), [
    ['inputs', { describe: 'inputs, or - for stdin', type: 'string', array: true }],
    ['scores', { describe: 's', type: 'string', default: '-' }],
  ])
})

t.test('a re-defaulted shared option: the outer default and the inner description reach yargs', async (t) => {
  // train-student re-defaults the shared --model (a DNN for ktp train) to an LSTM: yargs fills argv
  // with the default it is given, so taking the inner one trained a DNN "student" (issue 17)
  const shared = z.object({ model: z.string().default('dnn').describe('model config'), context: z.number().default(5) })
  const student = shared.extend({
    model: shared.shape.model.default('lstm'),
    context: shared.shape.context.default(0),
  })
  const o = yargsOptions(student)
  t.match(o.model, { default: 'lstm', describe: 'model config' })
  t.equal(o.context.default, 0)
  const real = yargsOptions(studentOptions)
  t.match(real.model, { default: /"type":"lstm"/, describe: /model config/ }, 'ktp train-student defaults to an LSTM')
  t.match(real.context, { default: 0, describe: /context/ })
  t.match(real.mode, { default: 'kt', describe: /training method/ })
})

/** Run `argv` through yargs with one command, as main.ts does; what run saw, exit code, stderr. */
async function drive(cmd: ReturnType<typeof defineCommand>, argv: string[]) {
  let stderr = ''
  const write = process.stderr.write
  process.stderr.write = ((c: string) => {
    stderr += c
    return true
  }) as typeof process.stderr.write
  process.exitCode = undefined
  let usage: string | undefined
  try {
    await yargs(argv.map((a) => (a === '-' ? STDIO_ARG : a)))
      .command(cmd)
      .strict()
      .fail((msg, err) => {
        if (err) throw err
        usage = msg
      })
      .parseAsync()
  } finally {
    process.stderr.write = write
  }
  const code = process.exitCode
  process.exitCode = undefined
  return { code, stderr, usage }
}

t.test('defineCommand: the handler hands run the typed args; - stays -; exit codes', async (t) => {
  const seen: unknown[] = []
  const cmd = defineCommand({
    command: 'toy <inputs..>',
    describe: 'a toy',
    options: toyOptions,
    cli: toyCli,
    positionals: toyPositionals,
    run: (a) => {
      seen.push(a)
      if (a.hmm === 'boom') throw new KtpError('no-file', '--hmm boom: no such file')
      return a.options.normVars ? 1 : 0
    },
  })
  const ok = await drive(cmd, ['toy', 'a.arrow', '-', '--hmm', 'h.json', '--frame-shift', '2.5', '-o', '-'])
  t.equal(ok.code, 0)
  t.same(seen[0], {
    options: { frameShift: 2.5, mode: 'a', normVars: false },
    hmm: 'h.json',
    output: '-',
    shard: null,
    force: false,
    quiet: false,
    inputs: ['a.arrow', '-'],
  })
  t.equal((await drive(cmd, ['toy', 'a', '--hmm', 'h', '--norm-vars'])).code, 1, "run's exit code")
  const fatal = await drive(cmd, ['toy', 'a', '--hmm', 'boom'])
  t.equal(fatal.code, 2, 'a KtpError: exit 2')
  t.equal(fatal.stderr, 'ktp: error: --hmm boom: no such file\n', 'one actionable line, no stack')
  const bad = await drive(cmd, ['toy', 'a', '--hmm', 'h', '--frame-shift', '0'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /--frame-shift: expected number to be >0, got 0/)
  const missing = await drive(cmd, ['toy', 'a'])
  t.match(missing.usage, /Missing required argument: hmm\n--hmm: HMM model file/, 'yargs refuses, naming --hmm')
  t.equal(seen.length, 3, 'run is not called on a usage error')
})

t.test('a declaration that contradicts itself fails when the module loads', async (t) => {
  const spec = { describe: 'd', options: toyOptions, run: () => 0 }
  t.throws(
    () => defineCommand({ ...spec, command: 'x <input>', positionals: { inputs: z.string() } }),
    /usage names positionals \[input\] but they are declared as \[inputs\]/,
  )
  t.throws(() => defineCommand({ ...spec, command: 'x', cli: { mode: z.string() } }), /'mode' is declared twice/)
  t.throws(() => defineCommand({ ...spec, command: 'x', cli: { options: z.string() } }), /'options' is .*reserved/)
})

t.test('the registry lists every command under its own usage', async (t) => {
  for (const c of commands) {
    const m = await c.load()
    t.equal(m.command, c.usage, `${c.name}: commands.ts and the module agree`)
  }
})

t.test('help texts: the recipes ktp run knows, no paths outside a clone', async (t) => {
  const run = commands.find((c) => c.name === 'run')!
  const runModule = await run.load()
  for (const recipe of RECIPES) {
    t.match(run.describe, recipe, `ktp --help names the ${recipe} recipe`)
    t.match(String(runModule.describe), recipe, `ktp run --help names the ${recipe} recipe`)
  }
  // a user's clone has no ../shared: examples use the bundled fixtures (help rendered in-process:
  // a CLI process per command costs minutes on a loaded machine)
  for (const c of commands) {
    let help = ''
    await yargs()
      .command(await c.load())
      .exitProcess(false)
      .parseAsync([c.name, '--help'], {}, (_err, _argv, out) => {
        help = out
      })
    t.match(help, c.name, `ktp ${c.name} --help renders`)
    t.notMatch(help, /\.\.\/shared/, `ktp ${c.name} --help: no ../shared paths`)
    t.notMatch(help, /--dense\b/, `ktp ${c.name} --help: no --dense (ktp infer --top-k 0)`)
  }
})

t.test('defineArrowStage: the generated command takes the run options', async (t) => {
  const seen: unknown[] = []
  const spec = {
    command: 'toy [input]',
    describe: 'd',
    accepts: ['features'],
    options: z.object({}),
    positionals: { input: z.string().default('-') },
    plan: (a: unknown) => {
      seen.push(a)
      return 0
    },
  }
  const ok = await drive(defineArrowStage(spec), ['toy', '-o', 'x.arrow', '--force', '--quiet', '--shard', '1/2'])
  t.equal(ok.code, 0, ok.stderr)
  t.same(seen[0], {
    options: {},
    input: '-',
    output: 'x.arrow',
    shard: { index: 1, count: 2 },
    force: true,
    quiet: true,
  })
  const noShard = await drive(defineArrowStage({ ...spec, shard: false }), ['toy', '--shard', '1/2'])
  t.match(noShard.usage, /Unknown argument: shard/, 'shard: false leaves --shard out')
})

// A toy stage, declared with defineArrowStage and driven through yargs as main.ts does (a real
// process: stdin, stdout and the exit code are the contract).
const TOY = `
import yargs from 'yargs'
import { z } from 'zod'
const root = process.argv[1]
const { STDIO_ARG, defineArrowStage } = await import(root + '/dist/pipeline/io/command.js')
const { columnWidth, makeSchema } = await import(root + '/dist/schemas/kinds.js')
const { getMatrix, makeUttBatch, uttId } = await import(root + '/dist/schemas/utterance.js')
const { UttError } = await import(root + '/dist/schemas/errors.js')
const scale = defineArrowStage({
  command: 'scale [input]',
  describe: 'multiply features by a factor',
  accepts: ['features'],
  options: z.object({ factor: z.number().positive().default(1).describe('the factor') }),
  cli: { failOn: z.string().optional().describe('fail this utterance') },
  positionals: { input: z.string().default('-').describe('features, or - for stdin') },
  plan: async ({ options, failOn }, open) => {
    const input = await open()
    const schema = makeSchema('features', { widths: { feats: columnWidth(input.schema, 'feats') } })
    const transform = (s) =>
      s.map((b) => {
        const utt = uttId(b)
        if (utt === failOn) throw new UttError('bad', utt, 'asked to fail')
        return makeUttBatch(schema, { utt, feats: getMatrix(b, 'feats').data.map((x) => x * options.factor) })
      })
    return { stage: 'scale', options, input, schema, transform }
  },
})
await yargs(process.argv.slice(2).map((a) => (a === '-' ? STDIO_ARG : a)))
  .command(scale)
  .strict()
  .fail((msg, err) => {
    if (err) throw err
    process.stderr.write('ktp: usage error: ' + msg + '\\n')
    process.exit(2)
  })
  .parseAsync()
`

function toy(args: string[], input?: Buffer) {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', TOY, ROOT, 'scale', ...args], {
    cwd: ROOT,
    input,
    maxBuffer: 1 << 28,
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString() }
}

t.test('a generated stage command, end to end through - (stdin and stdout)', async (t) => {
  const dir = tmp('ktp-command-')
  const feats = join(dir, 'f.arrow')
  const data = writeFeatures(
    feats,
    uttList(5, (i) => 2 + i),
    3,
    7,
    'fp-in',
  )
  const r = toy(['-', '--factor', '2', '-o', '-', '--quiet'], readFileSync(feats))
  t.equal(r.code, 0, r.stderr)
  t.match(r.stderr, /ktp scale: done 5, failed 0/)
  const batches = RecordBatchReader.from(r.stdout).readAll()
  const meta = batches[0].schema.metadata
  t.equal(meta.get('ktp.fingerprint'), fingerprint('scale', { factor: 2 }, ['fp-in']))
  t.same(JSON.parse(meta.get('ktp.producer')!).options, { factor: 2 }, 'producer: the options')
  t.same(
    batches.map((b) => uttId(b)),
    [...data.keys()],
    'every utterance, in order',
  )
  for (const b of batches) {
    const want = Array.from(data.get(uttId(b))!, (x) => Math.fround(x * 2))
    t.same(Array.from(getMatrix(b, 'feats').data), want, `${uttId(b)}: doubled`)
  }

  // to a file: a failed utterance is exit 1 and the others are written; the build key then says up to date
  const out = join(dir, 'scaled.arrow')
  const part = toy([feats, '--factor', '2', '--fail-on', 'utt00002', '-o', out, '--quiet'])
  t.equal(part.code, 1, 'some utterances failed: exit 1')
  t.match(part.stderr, /WARNING utt00002: asked to fail/)
  t.match(part.stderr, /done 4, failed 1/)
  const again = toy([feats, '--factor', '2', '-o', out])
  t.equal(again.code, 0)
  t.match(again.stderr, new RegExp(`ktp scale: ${out} is up to date, nothing to do`))
  const shard = toy([feats, '--factor', '2', '--shard', '1/2', '-o', out, '--quiet'])
  t.equal(shard.code, 0, 'a shard is another build of the same values')
  const file = RecordBatchReader.from(readFileSync(out)).open()
  t.equal(file.schema.metadata.get('ktp.fingerprint'), fingerprint('scale', { factor: 2 }, ['fp-in']))

  // usage errors: exit 2, nothing on stdout
  const badShard = toy([feats, '--shard', '3/2'])
  t.equal(badShard.code, 2)
  t.match(badShard.stderr, /ktp: error: expected --shard i\/N with 1 ≤ i ≤ N, got '3\/2'/)
  t.equal(badShard.stdout.length, 0)
  const badKind = join(dir, 'labels.arrow')
  writeFileSync(badKind, 'not arrow')
  const notArrow = toy([badKind])
  t.equal(notArrow.code, 2)
  t.match(notArrow.stderr, /labels\.arrow/)
  t.notMatch(notArrow.stderr, /internal error/)
})
