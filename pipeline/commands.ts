import type { CommandModule } from 'yargs'
import { catCommand } from '../stages/cat.command.js'
import { infoCommand } from '../stages/info.command.js'
import { mergeCommand } from '../stages/merge.command.js'

/** Every ktp subcommand, listed explicitly (no folder scanning): the order of `ktp --help`. */
export const commands: CommandModule[] = [
  infoCommand,
  catCommand,
  mergeCommand,
]
