import { existsSync, readFileSync } from 'node:fs'
import type { z } from 'zod'
import { KtpError } from '../../schemas/errors.js'

/**
 * A recipe's configuration is checked against its zod schema once it is final — the built-in
 * defaults or `--config FILE`, then `--seeds` and every `--set a.b=v` — and before any step is
 * planned, so that a typo or an impossible value is a one-line error (exit 2) that names the key,
 * the `--set` or file it came from, and what was expected; never a run that fails an hour later.
 */

/** Where the configuration came from, to name it in errors. */
export interface ConfigSources {
  /** 'the built-in fsdd quick config', or the `--config` file. */
  base: string
  /** The `--set KEY=VALUE` overrides, in the order they were applied. */
  sets: string[]
}

/** Keys that would reach an object's prototype rather than a field of the config. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype'])

function setKey(s: string): string {
  const eq = s.indexOf('=')
  return eq < 0 ? s : s.slice(0, eq)
}

/** A `--config` file: the whole configuration, as JSON. */
export function readConfigFile(path: string): unknown {
  if (!existsSync(path)) throw new KtpError('no-file', `--config: no such file '${path}'`)
  try {
    return JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new KtpError('usage', `--config ${path}: not valid JSON (${(err as Error).message})`)
  }
}

/**
 * `--set a.b=value`: override one field of the config (the value is read as JSON when it parses,
 * else it is a bare string). Only the config's own fields are walked or created, and keys that
 * name a prototype are refused, so `--set __proto__.x=1` cannot reach `Object.prototype`.
 */
export function applySets(cfg: unknown, sets: string[]): Record<string, unknown> {
  const out = structuredClone(cfg) as Record<string, unknown>
  for (const s of sets) {
    const eq = s.indexOf('=')
    if (eq < 0) throw new KtpError('usage', `--set: expected KEY=VALUE, got '${s}'`)
    const path = s.slice(0, eq).split('.')
    const bad = path.find((k) => k === '' || FORBIDDEN_KEYS.has(k))
    if (bad !== undefined)
      throw new KtpError('usage', `--set ${s}: '${bad}' is not a config field (expected KEY.KEY…=VALUE)`)
    let value: unknown = s.slice(eq + 1)
    try {
      value = JSON.parse(value as string)
    } catch {
      /* a bare string */
    }
    let o = out
    for (const [i, k] of path.slice(0, -1).entries()) {
      if (!Object.hasOwn(o, k)) o[k] = {}
      const next = o[k]
      if (typeof next !== 'object' || next === null)
        throw new KtpError('usage', `--set ${s}: '${path.slice(0, i + 1).join('.')}' is not an object in the config`)
      o = next as Record<string, unknown>
    }
    o[path[path.length - 1]] = value
  }
  return out
}

type Issue = z.core.$ZodIssue
type AnySchema = z.core.$ZodType & { _zod: { def: Record<string, unknown> } }

/** The schema of the field at `path` (through optional/default wrappers, records and arrays). */
function schemaAt(schema: AnySchema, path: PropertyKey[]): AnySchema | undefined {
  let cur: AnySchema | undefined = schema
  const inner = (s: AnySchema): AnySchema => {
    const d = s._zod.def
    return ['optional', 'default', 'nullable', 'prefault', 'readonly'].includes(d.type as string)
      ? inner(d.innerType as AnySchema)
      : s
  }
  for (const k of path) {
    if (!cur) return undefined
    const d: Record<string, unknown> = inner(cur)._zod.def
    if (d.type === 'object') cur = (d.shape as Record<string, AnySchema>)[String(k)]
    else if (d.type === 'record') cur = d.valueType as AnySchema
    else if (d.type === 'array') cur = d.element as AnySchema
    else return undefined
  }
  return cur && inner(cur)
}

/** The field names an object (or a record with enumerated keys) at `path` accepts. */
function knownKeys(schema: AnySchema, path: PropertyKey[]): string[] {
  const s = schemaAt(schema, path)
  if (!s) return []
  const d = s._zod.def
  if (d.type === 'object') return Object.keys(d.shape as object)
  if (d.type === 'record') {
    const values = (d.keyType as AnySchema)._zod.def.entries
    return values ? Object.keys(values as object) : []
  }
  return []
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0]
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1))
      diag = up
    }
  }
  return row[b.length]
}

function valueAt(cfg: unknown, path: PropertyKey[]): unknown {
  let v = cfg
  for (const k of path) v = v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined
  return v
}

const A: Record<string, string> = {
  number: 'a number',
  int: 'an integer',
  string: 'a string',
  boolean: 'true or false',
  array: 'a list',
  object: 'an object',
  record: 'an object',
}

function shown(v: unknown): string {
  if (v === undefined) return 'nothing'
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v)
  return JSON.stringify(v)
}

/** What the schema wanted, in words, for one issue (unknown keys are handled by the caller). */
function expected(issue: Issue): string {
  switch (issue.code) {
    case 'invalid_type': {
      const want = A[issue.expected] ?? issue.expected
      return issue.expected === 'number' && 'received' in issue && issue.received === 'Infinity'
        ? 'a finite number'
        : want
    }
    case 'too_small':
    case 'too_big': {
      const op = issue.code === 'too_small' ? (issue.inclusive ? '≥' : '>') : issue.inclusive ? '≤' : '<'
      const bound = String(issue.code === 'too_small' ? issue.minimum : issue.maximum)
      if (issue.origin === 'array') return `a list of ${op} ${bound} item(s)`
      if (issue.origin === 'string') return `a string of ${op} ${bound} character(s)`
      return `a number ${op} ${bound}`
    }
    case 'invalid_value':
      return `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`
    default:
      return issue.message
  }
}

/**
 * Validate the final configuration. Errors come back as one line per problem (at most three), each
 * naming its origin — the `--set` that touched the key, else the file or built-in config.
 */
export function validateConfig<S extends z.ZodType>(schema: S, cfg: unknown, src: ConfigSources): z.infer<S> {
  const r = schema.safeParse(cfg)
  if (r.success) return r.data
  const origin = (path: string) => {
    const set = [...src.sets]
      .reverse()
      .find((s) => path === setKey(s) || path.startsWith(`${setKey(s)}.`) || setKey(s).startsWith(`${path}.`))
    return set ? { name: `--set ${set}`, exact: setKey(set) === path } : { name: src.base, exact: false }
  }
  const lines: string[] = []
  for (const issue of r.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeys(schema as unknown as AnySchema, issue.path)
      for (const key of issue.keys) {
        const path = [...issue.path, key].join('.')
        const close = known.filter((k) => editDistance(k.toLowerCase(), key.toLowerCase()) <= 2)
        const hint = close.length ? `did you mean '${close[0]}'?` : `expected one of: ${known.join(', ')}`
        lines.push(`${origin(path).name}: unknown field '${path}' (${hint})`)
      }
      continue
    }
    const path = issue.path.join('.')
    const o = origin(path)
    const got = shown(valueAt(cfg, issue.path))
    lines.push(`${o.name}: ${o.exact ? '' : `${path || 'config'}: `}expected ${expected(issue)}, got ${got}`)
  }
  const more = lines.length > 3 ? ` (and ${lines.length - 3} more)` : ''
  throw new KtpError('usage', `${lines.slice(0, 3).join('; ')}${more}`)
}
