import type { PositionalOptions, Options as YargsOption } from 'yargs'
import type { z } from 'zod'
import { KtpError } from '../../schemas/errors.js'

/**
 * A stage's zod options schema is the single source of truth (docs/CONVENTIONS.md): the CLI's
 * options, their types, defaults and help texts are generated from it, and parsed argv goes back
 * through it so that every option is validated the same way from the CLI, a recipe or library code.
 * Positionals are zod too (`<input>`, `[scores]`, `<inputs..>`), generated and parsed the same way.
 */
type AnyZod = z.ZodType & {
  def: { type: string; innerType?: AnyZod; in?: AnyZod; defaultValue?: unknown }
  description?: string
}

/** A zod object's fields: what `cli` and `positionals` are declared as. */
export type Shape = z.ZodRawShape

export const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)

interface Field {
  base: AnyZod
  dflt: unknown
  /** optional, nullable or defaulted: the CLI may leave it out */
  optional: boolean
  description?: string
}

function unwrap(f: AnyZod): Field {
  let cur = f
  let dflt: unknown
  let hasDefault = false
  let optional = false
  // the outermost default and description win: `shape.model.default(x)` re-defaults an option
  // (train-student's LSTM over ktp train's DNN) and keeps the description of the inner one
  let description = f.description
  for (;;) {
    const t = cur.def.type
    description ??= cur.description
    if (t === 'default') {
      const d = cur.def.defaultValue
      if (!hasDefault) dflt = typeof d === 'function' ? (d as () => unknown)() : d
      hasDefault = true
      optional = true
    } else if (t === 'optional' || t === 'nullable') optional = true
    else if (t === 'pipe') {
      // a parsed value (`z.string().transform(...)`): the CLI takes what goes into the pipe
      cur = cur.def.in as AnyZod
      continue
    } else break
    cur = cur.def.innerType as AnyZod
  }
  return { base: cur, dflt, optional, description: description ?? cur.description }
}

const shapeOf = (s: z.ZodObject | Shape): Shape => ('_zod' in s ? (s as z.ZodObject).shape : (s as Shape))

/** The yargs type (and choices) of a zod field's base type. */
function yargsType(base: AnyZod): Pick<YargsOption, 'type' | 'choices'> {
  const t = base.def.type
  if (t === 'number' || t === 'int') return { type: 'number' }
  if (t === 'boolean') return { type: 'boolean' }
  if (t === 'enum') return { type: 'string', choices: (base as unknown as { options: string[] }).options }
  if (t === 'array') return { type: 'array' }
  return { type: 'string' }
}

/**
 * yargs option definitions (kebab-case names) for a zod object schema or shape. A field with
 * neither a default nor `.optional()` is required: yargs marks it `[required]` in --help and
 * refuses a command line without it ("Missing required argument: hmm", then what --hmm is).
 */
export function yargsOptions(schema: z.ZodObject | Shape, group?: string): Record<string, YargsOption> {
  const out: Record<string, YargsOption> = {}
  for (const [key, field] of Object.entries(shapeOf(schema))) {
    const { base, dflt, optional, description } = unwrap(field as unknown as AnyZod)
    const o: YargsOption = { describe: description ?? '', group, ...yargsType(base) }
    if (dflt !== undefined) o.default = dflt
    // (yargs prints this under "Missing required argument: name", so the message names --the-option)
    if (!optional) o.demandOption = description ? `--${kebab(key)}: ${description}` : true
    out[kebab(key)] = o
  }
  return out
}

/**
 * yargs positional definitions, in declaration order (which must be the order of the command's
 * usage string). A `z.array(...)` field is a variadic positional (`<inputs..>`).
 */
export function yargsPositionals(shape: Shape): [string, PositionalOptions][] {
  return Object.entries(shape).map(([key, field]) => {
    const { base, dflt, description } = unwrap(field as unknown as AnyZod)
    const p: PositionalOptions = { describe: description ?? '' }
    if (base.def.type === 'array') {
      p.type = 'string'
      p.array = true
    } else p.type = yargsType(base).type as PositionalOptions['type']
    if (dflt !== undefined) p.default = dflt
    return [key, p]
  })
}

/** How an argument is named in messages: `--frame-shift` for an option, `<input>` for a positional. */
export type ArgName = (key: string) => string
export const optionName: ArgName = (key) => `--${kebab(key)}`
export const positionalName: ArgName = (key) => `<${key}>`

/**
 * What was given for a number option that yargs could not read as one (it hands over NaN, which
 * JSON shows as null): the word on the command line, or a description when it is not there.
 */
function notANumber(option: string): string {
  const argv = process.argv
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === option && i + 1 < argv.length) return JSON.stringify(argv[i + 1])
    if (argv[i].startsWith(`${option}=`)) return JSON.stringify(argv[i].slice(option.length + 1))
  }
  return 'a value that is not a number'
}

/**
 * Validate options (camelCase keys, as yargs also provides) against the schema. Errors name the
 * CLI option and the bad value: "--frame-shift: expected number to be >0, got -3".
 */
export function parseOptions<S extends z.ZodObject>(
  schema: S,
  argv: Record<string, unknown>,
  name: ArgName = optionName,
): z.output<S> {
  const picked: Record<string, unknown> = {}
  for (const key of Object.keys(schema.shape)) if (argv[key] !== undefined) picked[key] = argv[key]
  const r = schema.safeParse(picked)
  if (r.success) return r.data
  const msgs = r.error.issues.map((i) => {
    const key = String(i.path[0] ?? '')
    if (picked[key] === undefined && i.code === 'invalid_type') return `${name(key)}: required, not given`
    const got = Number.isNaN(picked[key]) ? notANumber(name(key)) : JSON.stringify(picked[key])
    const detail = i.message.replace(/^Invalid (input|option): /, '').replace(/^Too (small|big): /, '')
    return `${name(key)}: ${detail}, got ${got}`
  })
  throw new KtpError('usage', msgs.join('; '))
}
