import type { Argv, CommandModule } from 'yargs'
import { z } from 'zod'
import { KtpError } from '../../schemas/errors.js'
import { describeFsError, isFsError } from './fs-errors.js'
import { refuseOverwritingInputs } from './output-guard.js'
import { type Shape, parseOptions, positionalName, yargsOptions, yargsPositionals } from './options.js'
import { type StageInput, type StageResult, type StageRun, arrowInput, runStage } from './run-stage.js'
import { exitCodeOf, guardCommand } from './signals.js'
import { type Shard, parseShard } from './shard.js'

/**
 * The command contract: how a stage (or any ktp subcommand) is bound to the CLI. Everything the
 * command line takes is declared as zod, so that `--help`, validation and the types `run` sees
 * come from one declaration, and `run` receives ONE typed object (no `String(argv.x)`):
 *
 *   export const hmmUpdateCommand = defineCommand({
 *     command: 'hmm-update <labels..>',       // yargs usage: <required>, [optional], <many..>
 *     describe: 'one line for --help',
 *     options: hmmUpdateOptions,              // the stage's zod object: the options that change its values
 *     cli: { hmm: z.string().describe('…'), output: z.string().describe('…') }, // CLI-only options, a zod shape
 *     positionals: { labels: z.array(z.string()).describe('…') }, // a zod shape, in usage order
 *     examples: [['ktp hmm-update --hmm h0.json ali.arrow -o h1.json', 'what this example does']],
 *     run: ({ options, ...files }) => hmmUpdate(options, files), // { options, hmm, output, labels }, typed
 *   })
 *
 * `run` returns the exit code. `options` appear under "Stage options" in --help and reach `run`
 * as `args.options`, exactly as parsed (they go into fingerprints and metadata); `cli` options
 * ("Run options") and positionals are flat on `args`. A field without `.default()` or
 * `.optional()` is required (`[required]` in --help, refused by yargs when missing). An `output`
 * CLI option also answers to `-o`. A lone `-` (stdin/stdout) arrives as '-'. The logic belongs
 * in the stage's stage.ts: `run` (or `plan`) only hands the arguments over.
 *
 * An Arrow → Arrow stage uses `defineArrowStage`, which adds the run options (-o/--output,
 * --shard parsed to a Shard, --force, --quiet), and runs the stage's plan through `runStage`
 * (resume, shards, up-to-date outputs, "done N, failed M", exit code):
 *
 *   export const spliceCommand = defineArrowStage({
 *     command: 'splice [input]',
 *     describe: '…',
 *     accepts: ['features'],                  // the kinds `open()` accepts
 *     options: spliceOptions,
 *     positionals: { input: z.string().default('-').describe('features Arrow file, or - for stdin') },
 *     plan: async ({ options }, open) => planSplice(options, await open()), // → StagePlan
 *   })
 *
 * Exit codes (Kaldi's): 0 all good, 1 some utterances failed (reported and skipped), 2 usage
 * error or fatal error; 130/143 stopped by SIGINT/SIGTERM (the handler guards every command,
 * see signals.ts). Data go to stdout, everything else to stderr; a KtpError is printed as
 * one actionable line (`ktp: error: …`), anything else as an internal error with its stack.
 */
export type Example = [command: string, what: string]

/** No fields: the type of an omitted `cli` or `positionals`. */
type NoShape = Record<never, never>
type Out<S extends Shape> = z.output<z.ZodObject<S>>

/** What `run` receives: the stage options under `options`, CLI-only options and positionals flat. */
export type CommandArgs<O extends z.ZodObject, C extends Shape = NoShape, P extends Shape = NoShape> = {
  options: z.output<O>
} & Out<C> &
  Out<P>

export interface CommandSpec<O extends z.ZodObject, C extends Shape, P extends Shape> {
  /** yargs usage: the name, then the positionals as `<required>`, `[optional]`, `<many..>`. */
  command: string
  describe: string
  /** Value-changing options of the stage (the single source of truth for CLI and library). */
  options: O
  /** CLI-only options (output files, --hmm, --quiet…). */
  cli?: C
  /** The positionals, in the order of `command`. */
  positionals?: P
  examples?: Example[]
  /**
   * Inputs the output may be the same file as: only for a command that reads them whole before
   * it replaces the output atomically (`hmm-update --hmm h.json -o h.json`). Every other input is
   * protected (pipeline/io/output-guard.ts).
   */
  mayOverwrite?: readonly string[]
  run: (args: CommandArgs<O, C, P>) => Promise<number> | number
}

/**
 * Stand-in for a lone `-` (stdin/stdout) while yargs parses, since yargs-parser would read it
 * as an empty option; handlers see `-` again.
 */
export const STDIO_ARG = '\u0000stdio'

function restoreStdio(argv: Record<string, unknown>): Record<string, unknown> {
  const fix = (v: unknown): unknown => (v === STDIO_ARG ? '-' : Array.isArray(v) ? v.map(fix) : v)
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(argv)) out[k] = fix(v)
  return out
}

export function reportFatal(err: unknown): number {
  // a file-system failure that no stage described (a full disk, a read-only mount): still one line
  // a reader that stops early (`| head -1`) closed the pipe: a normal end, not an error
  if (isFsError(err) && err.code === 'EPIPE') return 0
  if (isFsError(err)) err = describeFsError(err)
  if (err instanceof KtpError) {
    process.stderr.write(`ktp: error: ${err.message}\n`)
    // a stop by a signal: 128 + the signal's number, as a shell reports a process killed by it
    return exitCodeOf(err.code) ?? 2
  }
  process.stderr.write(`ktp: internal error: ${(err as Error)?.stack ?? String(err)}\n`)
  return 2
}

/**
 * Parse (restored) argv into the typed arguments of `run`: stage options, then CLI options, then
 * positionals, each through its zod schema; a bad value is a usage error naming it.
 */
export function parseArgs<O extends z.ZodObject, C extends Shape = NoShape, P extends Shape = NoShape>(
  options: O,
  cli: C,
  positionals: P,
  argv: Record<string, unknown>,
): CommandArgs<O, C, P> {
  const opts = parseOptions(options, argv)
  const flat = parseOptions(z.object(cli), argv)
  const pos = parseOptions(z.object(positionals), argv, positionalName)
  return { ...flat, ...pos, options: opts } as CommandArgs<O, C, P>
}

/** The positional names of a usage string: 'cat <inputs..>' → ['inputs']. */
function usagePositionals(command: string): string[] {
  return command
    .split(/\s+/)
    .slice(1)
    .map((w) => w.replace(/^[<[]|(\.\.)?[>\]]$/g, ''))
}

/** A declaration that contradicts itself is a programming error: fail when the module loads. */
function checkSpec(command: string, options: z.ZodObject, cli: Shape, positionals: Shape): void {
  const want = usagePositionals(command)
  const have = Object.keys(positionals)
  if (want.join(' ') !== have.join(' '))
    throw new Error(`${command}: the usage names positionals [${want}] but they are declared as [${have}]`)
  const seen = new Set(['options'])
  for (const key of [...Object.keys(options.shape), ...Object.keys(cli), ...have]) {
    if (seen.has(key)) throw new Error(`${command}: '${key}' is declared twice (or is reserved)`)
    seen.add(key)
  }
}

function builder(
  spec: { options: z.ZodObject; examples?: Example[] },
  cli: Shape,
  positionals: (y: Argv) => Argv,
): (y: Argv) => Argv {
  return (y) => {
    let b = positionals(y)
    b = b.options(yargsOptions(spec.options, 'Stage options:'))
    if (Object.keys(cli).length > 0) b = b.options(yargsOptions(cli, 'Run options:'))
    if ('output' in cli) b = b.alias('output', 'o')
    for (const [cmd, what] of spec.examples ?? []) b = b.example(cmd, what)
    return b
  }
}

function handler(
  command: string,
  run: (argv: Record<string, unknown>) => Promise<number> | number,
  mayOverwrite?: readonly string[],
) {
  return async (rawArgv: Record<string, unknown>) => {
    // SIGINT/SIGTERM: a stage stops at its next boundary, anything else at once (signals.ts)
    const guard = guardCommand(commandName(command, rawArgv))
    try {
      const argv = restoreStdio(rawArgv)
      refuseOverwritingInputs(argv, { positionals: usagePositionals(command), mayOverwrite })
      process.exitCode = await run(argv)
    } catch (err) {
      process.exitCode = reportFatal(err)
    } finally {
      guard.release()
    }
    // a stopped command may still hold stdin or a worker open, which would keep Node running
    if (guard.received() !== null) process.exit(process.exitCode)
  }
}

/** 'cmvn compute' for a subcommand, 'decode' for a command: what a stop message names. */
function commandName(command: string, argv: Record<string, unknown>): string {
  const name = command.split(/\s+/)[0]
  const parent = Array.isArray(argv._) ? argv._.map(String) : []
  return parent.length > 0 && parent[0] !== name ? `${parent[0]} ${name}` : name
}

export function defineCommand<O extends z.ZodObject, C extends Shape = NoShape, P extends Shape = NoShape>(
  spec: CommandSpec<O, C, P>,
): CommandModule {
  const cli = (spec.cli ?? {}) as C
  const positionals = (spec.positionals ?? {}) as P
  checkSpec(spec.command, spec.options, cli, positionals)
  return {
    command: spec.command,
    describe: spec.describe,
    builder: builder(spec, cli, (y) => {
      let b = y
      for (const [name, p] of yargsPositionals(positionals)) b = b.positional(name, p)
      return b
    }),
    handler: handler(
      spec.command,
      (argv) => spec.run(parseArgs(spec.options, cli, positionals, argv)),
      spec.mayOverwrite,
    ),
  }
}

/** The CLI options of every Arrow-writing stage; `defineArrowStage` adds them. */
export const runOptions = {
  output: z.string().default('-').describe('output Arrow file, or - for an Arrow stream on stdout'),
  // parsed here, so that a stage sees a Shard (a bad value throws parseShard's KtpError through zod)
  shard: z
    .string()
    .optional()
    .transform((s): Shard | null => (s === undefined ? null : parseShard(s)))
    .describe('process only shard i of N (i/N, 1-based) of the utterances, by a stable hash of their ids'),
  force: z.boolean().default(false).describe('recompute even if the output is up to date'),
  quiet: z.boolean().default(false).describe('no progress on stderr'),
}
export type RunOptions = typeof runOptions

/**
 * A stage's part of a run, as its stage.ts computes it from the typed arguments: what runStage
 * needs besides the run options (output, shard, force, quiet), plus two hooks.
 */
export interface StagePlan extends Omit<StageRun, 'output' | 'shard' | 'force' | 'quiet' | 'log'> {
  /** After a finished run (also when it was up to date): side outputs such as a CTM or an inventory. */
  after?: (result: StageResult) => void | Promise<void>
  /** At the very end, whatever happened: release what the plan holds (a worker pool). */
  close?: () => void | Promise<void>
}

/**
 * Open an Arrow input (a file, or - for stdin) of the stage's accepted kinds; `src` defaults to
 * the `input` positional. Opening is left to the plan so that it can read its side files and
 * check its option combinations first, and fail before waiting on a pipe.
 */
export type OpenInput = (src?: string, accepts?: readonly string[]) => Promise<StageInput>

export type ArrowStageArgs<O extends z.ZodObject, C extends Shape = NoShape, P extends Shape = NoShape> = CommandArgs<
  O,
  RunOptions & C,
  P
>

export interface ArrowStageSpec<O extends z.ZodObject, C extends Shape, P extends Shape>
  extends Omit<CommandSpec<O, C, P>, 'run'> {
  /** The Arrow kinds the input may be (`[]`: any); `open()` checks them. */
  accepts: readonly string[]
  /** false: no --shard (merge, whose inputs are shards already). */
  shard?: false
  /**
   * The stage's plan for this run; or, for a stage that wrote a non-Arrow output itself
   * (cat --format kaldi-text), its exit code.
   */
  plan: (args: ArrowStageArgs<O, C, P>, open: OpenInput) => Promise<StagePlan | number> | StagePlan | number
}

/**
 * An Arrow → Arrow stage command: the run options, the input, runStage (resume, shards,
 * up-to-date outputs, "done N, failed M") and its exit code, from a declaration.
 */
export function defineArrowStage<O extends z.ZodObject, C extends Shape = NoShape, P extends Shape = NoShape>(
  spec: ArrowStageSpec<O, C, P>,
): CommandModule {
  const { shard: _shard, ...withoutShard } = runOptions
  const run: RunOptions = spec.shard === false ? (withoutShard as RunOptions) : runOptions
  return defineCommand({
    command: spec.command,
    describe: spec.describe,
    options: spec.options,
    cli: { ...run, ...spec.cli } as RunOptions & C,
    positionals: spec.positionals,
    examples: spec.examples,
    mayOverwrite: spec.mayOverwrite,
    run: (args) => runArrowStage(spec, args),
  })
}

async function runArrowStage<O extends z.ZodObject, C extends Shape, P extends Shape>(
  spec: ArrowStageSpec<O, C, P>,
  args: ArrowStageArgs<O, C, P>,
): Promise<number> {
  // (the run options are in every ArrowStageArgs; TS cannot see through the generic mapped type)
  const { output, shard, force, quiet } = args as unknown as Out<RunOptions>
  const open: OpenInput = (src, accepts = spec.accepts) => {
    const from = src ?? (args as { input?: unknown }).input
    if (typeof from !== 'string') throw new Error(`${spec.command}: open() needs a source (no input positional)`)
    return arrowInput(from, [...accepts])
  }
  const plan = await spec.plan(args, open)
  if (typeof plan === 'number') return plan
  const { after, close, ...stage } = plan
  try {
    const r = await runStage({ ...stage, output, shard, force, quiet })
    await after?.(r)
    return r.exitCode
  } finally {
    await close?.()
  }
}
