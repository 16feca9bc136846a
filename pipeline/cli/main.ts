#!/usr/bin/env node
import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'
import { commands } from './commands.js'
import { KTP_VERSION } from '../io/version.js'
import { STDIO_ARG } from '../io/command.js'

/**
 * The `ktp` command line. Data goes to stdout, everything else to stderr; exit codes: 0 all
 * good, 1 some utterances failed (reported and skipped), 2 usage or fatal error.
 */
export async function main(argv: string[]): Promise<void> {
  // yargs-parser reads a lone '-' as an empty flag; hide it until the handler (see command.ts).
  let y = yargs(argv.map((a) => (a === '-' ? STDIO_ARG : a)))
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
  for (const c of commands) {
    if (c.name === wanted) y = y.command(await c.load())
    else y = y.command(c.usage, c.describe)
  }
  await y.parseAsync()
}

await main(hideBin(process.argv))
