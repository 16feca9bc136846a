import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'
import { commands } from './commands.js'
import { KTP_VERSION } from '../io/version.js'
import { STDIO_ARG } from '../io/command.js'
import { tuneHeapFor } from './heap-tuning.js'

/**
 * The `ktp` command line. Data goes to stdout, everything else to stderr; exit codes: 0 all
 * good, 1 some utterances failed (reported and skipped), 2 usage or fatal error, 130/143 stopped
 * by SIGINT/SIGTERM (pipeline/io/signals.ts).
 */
export async function main(argv: string[]): Promise<void> {
  // yargs-parser reads a lone '-' as an empty flag; hide it until the handler (see command.ts).
  let y = yargs(joinDashValues(argv).map((a) => (a === '-' ? STDIO_ARG : a)))
    .scriptName('ktp')
    .usage(
      'ktp <command> [options]\n\nKnowledge-transfer pre-training of speech acoustic models, as composable Arrow stream stages.',
    )
    .version(KTP_VERSION)
    .strict()
    .demandCommand(1, 'give a command; see ktp --help')
    .recommendCommands()
    .wrap(Math.min(110, process.stderr.columns || 100))
    .epilog(
      [
        'Chain stages with pipes: ktp features data/fsdd/train -o - | ktp splice --context 5 | ktp info -',
        'Inside a clone, without npm link: npx ktp <command> (README.md, "Running ktp").',
      ].join('\n'),
    )
    .fail((msg, err) => {
      if (err) throw err
      process.stderr.write(`ktp: usage error: ${msg}\nSee ktp --help.\n`)
      process.exit(2)
    })
  // Load only the command being run; the others are listed by name for --help.
  const wanted = argv.find((a) => !a.startsWith('-'))
  // before the command allocates: V8 sizes the old generation from these at each full collection
  tuneHeapFor(wanted)
  for (const c of commands) {
    if (c.name === wanted) y = y.command(await c.load())
    else y = y.command(c.usage, c.describe)
  }
  skipHelpCache(y)
  await y.parseAsync()
}

/**
 * Before running a command's handler, yargs renders that command's whole help and keeps it for a
 * later showHelp(), which ktp never calls (its .fail() prints its own message): string-width over
 * every option, 0.1–0.2 s of CPU in every `ktp` process. Dropping the cache changes no output.
 * Internal yargs API, so only where it is as expected; otherwise yargs just does its usual work.
 */
function skipHelpCache(y: unknown): void {
  const internal = (y as { getInternalMethods?: () => { getUsageInstance?: () => unknown } }).getInternalMethods
  const usage = internal?.call(y).getUsageInstance?.() as { cacheHelpMessage?: () => void } | undefined
  if (usage && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => {}
}

/**
 * `--shard -1/4` reaches yargs as a cluster of short flags ("Unknown argument: 1"); joined as
 * `--shard=-1/4` it reaches the option's own check, whose message names the option and the range.
 */
export function joinDashValues(argv: string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const next = argv[i + 1]
    if (a.startsWith('--') && !a.includes('=') && next !== undefined && /^-\d+\/-?\d+$/.test(next)) {
      out.push(`${a}=${next}`)
      i++
    } else out.push(a)
  }
  return out
}

await main(hideBin(process.argv))
