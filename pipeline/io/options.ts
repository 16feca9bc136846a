import type { Options as YargsOption } from 'yargs'
import type { z } from 'zod'
import { KtpError } from '../../schemas/errors.js'

/**
 * A stage's zod options schema is the single source of truth (CONVENTIONS.md): the CLI's
 * options, their types, defaults and help texts are generated from it, and parsed argv goes back
 * through it so that every option is validated the same way from the CLI, a recipe or library code.
 */
type AnyZod = z.ZodType & { def: { type: string; innerType?: AnyZod; defaultValue?: unknown }; description?: string }

export const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)

function unwrap(f: AnyZod): { base: AnyZod; dflt: unknown; optional: boolean; description?: string } {
  let cur = f
  let dflt: unknown
  let optional = false
  const description = f.description
  for (;;) {
    const t = cur.def.type
    if (t === 'default') {
      const d = cur.def.defaultValue
      dflt = typeof d === 'function' ? (d as () => unknown)() : d
    } else if (t === 'optional' || t === 'nullable') optional = true
    else break
    cur = cur.def.innerType as AnyZod
  }
  return { base: cur, dflt, optional, description: description ?? cur.description }
}

/** yargs option definitions (kebab-case names) for a zod object schema. */
export function yargsOptions(schema: z.ZodObject, groups?: string): Record<string, YargsOption> {
  const out: Record<string, YargsOption> = {}
  for (const [key, field] of Object.entries(schema.shape)) {
    const { base, dflt, description } = unwrap(field as AnyZod)
    const t = base.def.type
    const o: YargsOption = { describe: description ?? '', group: groups }
    if (t === 'number' || t === 'int') o.type = 'number'
    else if (t === 'boolean') o.type = 'boolean'
    else if (t === 'enum') {
      o.type = 'string'
      o.choices = (base as unknown as { options: string[] }).options
    } else if (t === 'array') o.type = 'array'
    else o.type = 'string'
    if (dflt !== undefined) o.default = dflt
    out[kebab(key)] = o
  }
  return out
}

/**
 * Validate options (camelCase keys, as yargs also provides) against the schema. Errors name the
 * CLI option and the bad value: "expected --frame-shift > 0, got -3".
 */
export function parseOptions<S extends z.ZodObject>(schema: S, argv: Record<string, unknown>): z.infer<S> {
  const picked: Record<string, unknown> = {}
  for (const key of Object.keys(schema.shape)) if (argv[key] !== undefined) picked[key] = argv[key]
  const r = schema.safeParse(picked)
  if (r.success) return r.data
  const msgs = r.error.issues.map((i) => {
    const key = String(i.path[0] ?? '')
    const got = JSON.stringify(picked[key])
    const detail = i.message.replace(/^Invalid input: /, '').replace(/^Too (small|big): /, '')
    return `--${kebab(key)}: ${detail}, got ${got}`
  })
  throw new KtpError('usage', msgs.join('; '))
}
