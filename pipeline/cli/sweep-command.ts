import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { z } from 'zod'
import { KtpError } from '../../schemas/errors.js'
import { defineCommand } from '../io/command.js'
import { runRecipe } from '../recipes/runner.js'
import { OPTIMIZERS, type OptimizerName } from '../../stages/train/optimizer.js'
import { RECIPES, configureRecipe, recipeChoice, recipeConfigOptions, recipeDataOptions } from '../recipes/select.js'
import { type SweepAxes, type TopK, planSweep } from '../recipes/sweep.js'
import { SYSTEMS } from '../recipes/systems.js'
import { studentConfigSchema, systemsConfigSchema } from '../recipes/systems-config.js'
import { chooseExecutor, executorCliOptions } from './executor-options.js'

/** A comma-separated axis; `what` names it in errors. */
function list<T>(s: string | undefined, what: string, parse: (x: string) => T | undefined, fallback: T): T[] {
  if (s === undefined || s === '') return [fallback]
  const out = s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)
    .map((x) => {
      const v = parse(x)
      if (v === undefined) throw new KtpError('usage', `--${what}: '${x}' is not a valid value`)
      return v
    })
  if (new Set(out.map(String)).size !== out.length) throw new KtpError('usage', `--${what}: a value is listed twice`)
  return out
}

/** An axis value is valid when the config field it sweeps accepts it (one declaration of each bound). */
const valid =
  <T>(field: z.ZodType<T>, read: (x: string) => unknown = Number) =>
  (x: string): T | undefined => {
    const r = field.safeParse(read(x))
    return r.success ? r.data : undefined
  }
const student = studentConfigSchema.shape
const topK = valid(systemsConfigSchema.shape.soft.shape.topK)
/** Soft-target storage: top-k 0 keeps every class, which the sweep names 'dense'. */
const dense = (k: number | undefined): TopK | undefined => (k === 0 ? 'dense' : k)

const sweepCli = z.object({
  out: z.string().describe('output directory'),
  ...recipeDataOptions,
  dryRun: z.boolean().default(false).describe('print the plan and run nothing'),
  jobs: z.number().int().min(1).default(1).describe('independent steps to run at once'),
  ...executorCliOptions,
})

export const sweepCommand = defineCommand({
  command: 'sweep <recipe>',
  describe:
    "train a recipe's systems over a grid of data fraction, temperature, top-k and optimiser, sharing every common step",
  options: z.object({
    ...recipeConfigOptions,
    dataFraction: z
      .string()
      .optional()
      .describe('training-data fractions, e.g. 0.1,0.25,0.5,1 (nested subsets, balanced by speaker)'),
    temperature: z.string().optional().describe('KT temperatures, e.g. 1,2,4'),
    topK: z.string().optional().describe('soft-target storage, e.g. 8,32,dense'),
    optimiser: z
      .string()
      .optional()
      .describe(`student optimisers, from ${OPTIMIZERS.join(',')}`),
    systems: z
      .string()
      .optional()
      .describe(`systems to train (teachers the students need are added), default all: ${SYSTEMS.join(',')}`),
  }),
  cli: sweepCli.shape,
  positionals: { recipe: z.string().describe(`the recipe: ${RECIPES.join(' or ')}`) },
  examples: [
    [
      'ktp sweep fsdd --out exp/sweep --quick --data-fraction 0.25,1 --seeds 2',
      'does KT pay with a quarter of the data?',
    ],
    [
      'ktp sweep fsdd --out exp/sweep --temperature 1,2,4 --systems lstm-baseline,lstm-kt --seeds 3',
      'a temperature sweep of one student',
    ],
  ],
  run: async ({ options: o, recipe: name, ...cli }) => {
    const log = (l: string) => process.stderr.write(`${l}\n`)
    // the configuration is validated here, before anything is planned or run (--dry-run too)
    const recipe = configureRecipe(name, recipeChoice(o, cli))
    const cfg = recipe.config
    const axes: SweepAxes = {
      dataFraction: list(o.dataFraction, 'data-fraction', valid(student.dataFraction), cfg.student.dataFraction),
      temperature: list(o.temperature, 'temperature', valid(student.temperature), cfg.student.temperature),
      topK: list<TopK>(o.topK, 'top-k', (x) => (x === 'dense' ? 'dense' : dense(topK(x))), dense(cfg.soft.topK)!),
      optimiser: list<OptimizerName>(o.optimiser, 'optimiser', valid(student.optimizer, String), cfg.student.optimizer),
    }
    const systems = o.systems
      ? o.systems
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : [...SYSTEMS]
    const out = resolve(cli.out)
    const plan = planSweep(recipe.prep(recipe.data(), out), cfg, axes, systems, out)
    const trains = plan.recipe.steps.filter(
      (s) => s.cmd?.[0] === 'train-teacher' || s.cmd?.[0] === 'train-student',
    ).length
    const infers = plan.recipe.steps.filter((s) => s.name.startsWith('soft-')).length
    log(
      `ktp sweep ${recipe.name}: ${plan.points.length} point(s) × seeds ${cfg.seeds.join(',')}: ${trains} models to train, ${infers} soft-target file(s), output ${out}`,
    )
    const t0 = Date.now()
    const { executor, only } = chooseExecutor(cli, out)
    const outcomes = await runRecipe(plan.recipe, { out, dryRun: cli.dryRun, jobs: cli.jobs, log, ...only }, executor)
    const ran = outcomes.filter((x) => x.state === 'ran').length
    const failed = outcomes.filter((x) => x.state === 'failed')
    const submitted = outcomes.filter((x) => x.state === 'submitted').length
    if (submitted) log(`ktp sweep ${recipe.name}: submitted ${submitted} step(s); run the same command again to wait`)
    if (cli.dryRun || submitted || only.only) return failed.length ? 1 : 0
    log(
      ran === 0 && failed.length === 0
        ? `ktp sweep ${recipe.name}: everything is up to date, nothing to do`
        : `ktp sweep ${recipe.name}: ran ${ran} step(s) in ${((Date.now() - t0) / 1000).toFixed(0)} s${failed.length ? `, ${failed.length} failed: ${failed.map((f) => f.name).join(', ')}` : ''}`,
    )
    const report = join(out, 'report.md')
    if (existsSync(report) && failed.length === 0) {
      const md = readFileSync(report, 'utf8')
      const reading = md.split('\n').filter((l) => l.startsWith('- **'))
      process.stdout.write(`${reading.join('\n')}\n\nReport: ${report}\nRows: ${join(out, 'sweep.json')}\n`)
    }
    return failed.length ? 1 : 0
  },
})
