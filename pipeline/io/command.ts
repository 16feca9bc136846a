import type { Argv, CommandModule } from 'yargs'
import { z } from 'zod'
import { KtpError } from '../../schemas/errors.js'
import { parseOptions, yargsOptions } from './options.js'

/**
 * The thin CLI binding of a stage: yargs options generated from the stage's zod schema, plus
 * positionals and examples; the handler validates through the same schema, runs, and maps the
 * outcome to Kaldi-like exit codes (0 ok, 1 some utterances failed, 2 usage or fatal error).
 */
export interface CommandSpec<S extends z.ZodObject> {
  command: string
  describe: string
  /** Value-changing options of the stage (single source of truth for CLI and library). */
  options: S
  /** Extra CLI-only options (output, shard, quiet…), also a zod object. */
  cliOptions?: z.ZodObject
  positionals?: (y: Argv) => Argv
  examples?: [string, string][]
  run: (opts: z.infer<S>, argv: Record<string, unknown>) => Promise<number>
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
  if (err instanceof KtpError) {
    process.stderr.write(`ktp: error: ${err.message}\n`)
    return err.code === 'interrupted' ? 130 : 2
  }
  process.stderr.write(`ktp: internal error: ${(err as Error)?.stack ?? String(err)}\n`)
  return 2
}

export function defineCommand<S extends z.ZodObject>(spec: CommandSpec<S>): CommandModule {
  return {
    command: spec.command,
    describe: spec.describe,
    builder: (y: Argv) => {
      let b = spec.positionals ? spec.positionals(y) : y
      b = b.options(yargsOptions(spec.options, 'Stage options:'))
      if (spec.cliOptions) b = b.options(yargsOptions(spec.cliOptions, 'Run options:'))
      if (spec.cliOptions && 'output' in spec.cliOptions.shape) b = b.alias('output', 'o')
      for (const [cmd, what] of spec.examples ?? []) b = b.example(cmd, what)
      return b
    },
    handler: async (rawArgv: Record<string, unknown>) => {
      const argv = restoreStdio(rawArgv)
      try {
        const opts = parseOptions(spec.options, argv)
        if (spec.cliOptions) parseOptions(spec.cliOptions, argv)
        process.exitCode = await spec.run(opts, argv)
      } catch (err) {
        process.exitCode = reportFatal(err)
      }
    },
  }
}

/** CLI options shared by Arrow-writing stages. */
export const runOptions = z.object({
  output: z.string().default('-').describe('output Arrow file, or - for an Arrow stream on stdout'),
  shard: z
    .string()
    .optional()
    .describe('process only shard i of N (i/N, 1-based) of the utterances, by a stable hash of their ids'),
  force: z.boolean().default(false).describe('recompute even if the output is up to date'),
  quiet: z.boolean().default(false).describe('no progress on stderr'),
})
