import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import { KtpError } from '../../schemas/errors.js'
import { fsddSpeakers } from '../../stages/formats/fsdd.js'
import { timitSpeakers } from '../../stages/formats/timit.js'
import { applySets, readConfigFile, validateConfig } from './config.js'
import { type Fold, leaveOneSpeakerOut, speakerGroups } from './folds.js'
import { fsddPrep } from './fsdd.js'
import { FSDD_FULL, FSDD_QUICK, fsddConfigSchema } from './fsdd-config.js'
import type { Prepared } from './systems.js'
import type { SystemsConfig } from './systems-config.js'
import { timitPrep } from './timit.js'
import { TIMIT_FULL, TIMIT_QUICK, timitConfigSchema } from './timit-config.js'

/**
 * What `ktp run` and `ktp sweep` share: which built-in recipe, its configuration (quick or full,
 * seeds, a JSON config file, `--set` overrides, the timit split) validated against the recipe's
 * schema, and where its data is.
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

/** A built-in recipe: its config schema and defaults, its data side, and where its data is. */
interface RecipeDef<C extends SystemsConfig> {
  schema: z.ZodType<C>
  full: C
  quick: C
  prep: (corpus: string, out: string, cfg: C) => Prepared
  /** The corpus when `--data` is not given. */
  defaultData: () => string
  /** CLI options that write into the config (before `--set`, which wins). */
  fromCli?: (cfg: Record<string, unknown>, c: RecipeChoice) => void
  /** `--folds K`: the first K folds of the corpus (checked: see folds.ts). */
  folds: (corpus: string, k: number, cfg: C) => Fold[]
  /** The configuration of one fold: the fold's speakers in place of the configured split. */
  foldConfig: (cfg: C, fold: Fold) => C
}

/** Timit folds: test groups of speakers; without `split.foldGroups`, six groups. */
export const TIMIT_FOLD_GROUPS = 6

const DEFS: { fsdd: RecipeDef<z.infer<typeof fsddConfigSchema>>; timit: RecipeDef<z.infer<typeof timitConfigSchema>> } =
  {
    fsdd: {
      schema: fsddConfigSchema,
      full: FSDD_FULL,
      quick: FSDD_QUICK,
      prep: fsddPrep,
      defaultData: bundledFsdd,
      folds: (corpus, k) => leaveOneSpeakerOut(fsddSpeakers(corpus), k, corpus),
      foldConfig: (cfg, fold) => ({
        ...cfg,
        connect: { ...cfg.connect, testSpeakers: fold.test.join(','), devSpeakers: fold.dev.join(',') },
      }),
    },
    timit: {
      schema: timitConfigSchema,
      full: TIMIT_FULL,
      quick: TIMIT_QUICK,
      prep: timitPrep,
      defaultData: () => {
        throw new KtpError('usage', 'the timit recipe needs --data DIR (a TIMIT-layout corpus)')
      },
      fromCli: (cfg, c) => {
        const split = { ...(cfg.split as object) } as Record<string, unknown>
        if (c.testSpeakers) split.testSpeakers = c.testSpeakers
        if (c.testFraction !== undefined) split.testFraction = c.testFraction
        if (c.testUtts) split.testUtts = c.testUtts
        cfg.split = split
      },
      folds: (corpus, k, cfg) => {
        const { testSpeakers, testFraction, testUtts } = cfg.split
        if (testSpeakers !== undefined || testFraction !== undefined || testUtts !== undefined)
          throw new KtpError(
            'usage',
            '--folds chooses the test speakers itself; drop --test-speakers/--test-fraction/--test-utts (split.test*)',
          )
        return speakerGroups(timitSpeakers(corpus), cfg.split.foldGroups ?? TIMIT_FOLD_GROUPS, k, corpus)
      },
      foldConfig: (cfg, fold) => ({ ...cfg, split: { ...cfg.split, testSpeakers: fold.test.join(',') } }),
    },
  }

/** A recipe with its validated configuration, ready to plan its data side under an output directory. */
export interface ConfiguredRecipe {
  name: RecipeName
  config: SystemsConfig
  /** The corpus: `--data`, else the recipe's default (fsdd: the bundled copy). */
  data: () => string
  prep: (corpus: string, out: string) => Prepared
  /** `--folds K`: the folds (checked before anything is planned), and each fold's data side and config. */
  folds: (corpus: string, k: number) => Fold[]
  prepFold: (corpus: string, out: string, fold: Fold) => { prep: Prepared; config: SystemsConfig }
}

export function recipeName(name: unknown): RecipeName {
  if (!(RECIPES as readonly unknown[]).includes(name))
    throw new KtpError('usage', `unknown recipe '${String(name)}' (built in: ${RECIPES.join(', ')})`)
  return name as RecipeName
}

function configure<C extends SystemsConfig>(name: RecipeName, def: RecipeDef<C>, c: RecipeChoice): ConfiguredRecipe {
  const base = c.config ? `--config ${c.config}` : `the built-in ${name} ${c.quick ? 'quick' : 'full'} config`
  const raw = c.config ? readConfigFile(c.config) : structuredClone(c.quick ? def.quick : def.full)
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new KtpError('usage', `${base}: expected a JSON object (the whole ${name} config)`)
  const cfg = { ...(raw as Record<string, unknown>) }
  if (c.seeds) cfg.seeds = Array.from({ length: c.seeds }, (_, i) => i + 1)
  def.fromCli?.(cfg, c)
  const config = validateConfig(def.schema, applySets(cfg, c.set), { base, sets: c.set })
  return {
    name,
    config,
    data: () => c.data ?? def.defaultData(),
    prep: (corpus, out) => def.prep(corpus, resolve(out), config),
    folds: (corpus, k) => def.folds(corpus, k, config),
    prepFold: (corpus, out, fold) => {
      const c = def.foldConfig(config, fold)
      return { prep: def.prep(corpus, resolve(out), c), config: c }
    },
  }
}

/**
 * The recipe and its final configuration — defaults or `--config`, then `--seeds`, the timit split
 * options and every `--set` — validated against the recipe's schema before anything is planned.
 */
export function configureRecipe(name: unknown, c: RecipeChoice): ConfiguredRecipe {
  const recipe = recipeName(name)
  return recipe === 'fsdd' ? configure(recipe, DEFS.fsdd, c) : configure(recipe, DEFS.timit, c)
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

/** The recipe choice from the parsed configuration options and data options. */
export function recipeChoice(
  o: { quick: boolean; seeds?: number; set: string[]; config?: string },
  d: { data?: string; testSpeakers?: string; testFraction?: number; testUtts?: string },
): RecipeChoice {
  const { quick, seeds, set, config } = o
  const { data, testSpeakers, testFraction, testUtts } = d
  return { quick, seeds, set, config, data, testSpeakers, testFraction, testUtts }
}
