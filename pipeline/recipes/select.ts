import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import { KtpError } from '../../schemas/errors.js'
import { FSDD_FULL, FSDD_QUICK, fsddPrep } from './fsdd.js'
import { TIMIT_FULL, TIMIT_QUICK, timitPrep } from './timit.js'
import type { Prepared, SystemsConfig } from './systems.js'

/**
 * What `ktp run` and `ktp sweep` share: which built-in recipe, its configuration (quick or full,
 * seeds, a JSON config file, `--set` overrides, the timit split), and where its data is.
 */
export const RECIPES = ['fsdd', 'timit'] as const
export type RecipeName = (typeof RECIPES)[number]

export interface RecipeChoice {
  quick: boolean
  seeds?: number
  set: string[]
  config?: string
  data?: string
  testSpeakers?: string
  testFraction?: number
  testUtts?: string
}

/** The bundled FSDD copy, found from this module whether it runs from dist/ or from source. */
export function bundledFsdd(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'fixtures', 'fsdd', 'recordings'))) return join(dir, 'fixtures', 'fsdd')
    dir = dirname(dir)
  }
  throw new KtpError('no-data', 'the bundled FSDD recordings (fixtures/fsdd) were not found; give --data DIR')
}

/** `--set a.b=value`: override one field of the recipe config (value parsed as JSON when it can be). */
export function applySets(cfg: Record<string, unknown>, sets: string[]): Record<string, unknown> {
  const out = structuredClone(cfg)
  for (const s of sets) {
    const eq = s.indexOf('=')
    if (eq < 0) throw new KtpError('usage', `--set: expected KEY=VALUE, got '${s}'`)
    const path = s.slice(0, eq).split('.')
    let value: unknown = s.slice(eq + 1)
    try {
      value = JSON.parse(value as string)
    } catch {
      /* a bare string */
    }
    let o = out as Record<string, unknown>
    for (const k of path.slice(0, -1)) {
      if (o[k] === undefined) o[k] = {}
      if (typeof o[k] !== 'object' || o[k] === null)
        throw new KtpError('usage', `--set ${s}: '${k}' is not an object in the config`)
      o = o[k] as Record<string, unknown>
    }
    o[path[path.length - 1]] = value
  }
  return out
}

export function recipeConfig(recipe: string, c: RecipeChoice): SystemsConfig & Record<string, unknown> {
  if (!(RECIPES as readonly string[]).includes(recipe))
    throw new KtpError('usage', `unknown recipe '${recipe}' (built in: ${RECIPES.join(', ')})`)
  const base = recipe === 'fsdd' ? (c.quick ? FSDD_QUICK : FSDD_FULL) : c.quick ? TIMIT_QUICK : TIMIT_FULL
  let cfg = (c.config ? JSON.parse(readFileSync(c.config, 'utf8')) : structuredClone(base)) as Record<string, unknown>
  if (c.seeds) cfg.seeds = Array.from({ length: c.seeds }, (_, i) => i + 1)
  if (recipe === 'timit') {
    const split = { ...(cfg.split as object) } as Record<string, unknown>
    if (c.testSpeakers) split.testSpeakers = c.testSpeakers
    if (c.testFraction !== undefined) split.testFraction = c.testFraction
    if (c.testUtts) split.testUtts = c.testUtts
    cfg.split = split
  }
  cfg = applySets(cfg, c.set)
  return cfg as SystemsConfig & Record<string, unknown>
}

export function recipeData(recipe: string, c: RecipeChoice): string {
  if (c.data) return c.data
  if (recipe === 'fsdd') return bundledFsdd()
  throw new KtpError('usage', `the ${recipe} recipe needs --data DIR (a TIMIT-layout corpus)`)
}

/** The data side of a recipe (its steps and what the systems train on), written under `out`. */
export function recipePrep(recipe: string, data: string, out: string, cfg: SystemsConfig): Prepared {
  return recipe === 'fsdd' ? fsddPrep(data, resolve(out), cfg as never) : timitPrep(data, resolve(out), cfg as never)
}

/** Options of `ktp run` and `ktp sweep` that choose the recipe's configuration. */
export const recipeConfigOptions = {
  quick: z.boolean().default(false).describe('the quick configuration (one seed, a subset of the data, small models)'),
  seeds: z.number().int().min(1).optional().describe('number of training seeds (1..N)'),
  set: z
    .array(z.string())
    .default([])
    .describe('override a config field, e.g. --set students.lstm-kt.temperature=4 (repeatable)'),
  config: z.string().optional().describe('a JSON file with the whole config (instead of the built-in one)'),
}

/** CLI options of `ktp run` and `ktp sweep` that choose the data (corpus, timit test split). */
export const recipeDataOptions = {
  data: z.string().optional().describe('corpus folder (default for fsdd: the bundled FSDD copy)'),
  testSpeakers: z
    .string()
    .optional()
    .describe('timit: test speakers (comma-separated or a file), for corpora without TRAIN/TEST'),
  testFraction: z.number().min(0).max(1).optional().describe('timit: deterministic fraction of speakers for test'),
  testUtts: z.string().optional().describe('timit: utterances (or sentence ids such as si836) for test'),
}

/** The recipe choice from parsed options (`o`: quick/seeds/set/config) and the CLI's data options. */
export function recipeChoice(
  o: { quick: boolean; seeds?: number; set: string[]; config?: string },
  argv: Record<string, unknown>,
): RecipeChoice {
  return {
    quick: o.quick,
    seeds: o.seeds,
    set: o.set,
    config: o.config,
    data: argv.data as string | undefined,
    testSpeakers: argv.testSpeakers as string | undefined,
    testFraction: argv.testFraction as number | undefined,
    testUtts: argv.testUtts as string | undefined,
  }
}
