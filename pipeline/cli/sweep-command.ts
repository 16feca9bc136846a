import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { z } from 'zod'
import { KtpError } from '../../schemas/errors.js'
import { defineCommand } from '../io/command.js'
import { runRecipe } from '../recipes/runner.js'
import { OPTIMIZERS, type OptimizerName } from '../../stages/train/optimizer.js'
import {
  recipeChoice,
  recipeConfig,
  recipeConfigOptions,
  recipeData,
  recipeDataOptions,
  recipePrep,
} from '../recipes/select.js'
import { type SweepAxes, type TopK, planSweep } from '../recipes/sweep.js'
import { SYSTEMS } from '../recipes/systems.js'

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

const num = (lo: number, hi: number) => (x: string) => {
  const v = Number(x)
  return Number.isFinite(v) && v > lo && v <= hi ? v : undefined
}

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
  cliOptions: z.object({
    out: z.string().describe('output directory'),
    ...recipeDataOptions,
    dryRun: z.boolean().default(false).describe('print the plan and run nothing'),
    jobs: z.number().int().min(1).default(1).describe('independent steps to run at once'),
  }),
  positionals: (y) => y.positional('recipe', { describe: 'fsdd or timit', type: 'string' }),
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
  run: async (o, argv) => {
    const log = (l: string) => process.stderr.write(`${l}\n`)
    const recipe = String(argv.recipe)
    const choice = recipeChoice(o, argv)
    const cfg = recipeConfig(recipe, choice)
    const axes: SweepAxes = {
      dataFraction: list(o.dataFraction, 'data-fraction', num(0, 1), cfg.student.dataFraction ?? 1),
      temperature: list(o.temperature, 'temperature', num(0, 1000), cfg.student.temperature),
      topK: list<TopK>(
        o.topK,
        'top-k',
        (x) =>
          x === 'dense' || x === '0' ? 'dense' : Number.isInteger(Number(x)) && Number(x) > 0 ? Number(x) : undefined,
        cfg.soft.topK === 0 ? 'dense' : cfg.soft.topK,
      ),
      optimiser: list<OptimizerName>(
        o.optimiser,
        'optimiser',
        (x) => ((OPTIMIZERS as readonly string[]).includes(x) ? (x as OptimizerName) : undefined),
        cfg.student.optimizer,
      ),
    }
    const systems = o.systems
      ? o.systems
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : [...SYSTEMS]
    const out = resolve(String(argv.out))
    const plan = planSweep(recipePrep(recipe, recipeData(recipe, choice), out, cfg), cfg, axes, systems, out)
    const trains = plan.recipe.steps.filter(
      (s) => s.cmd?.[0] === 'train-teacher' || s.cmd?.[0] === 'train-student',
    ).length
    const infers = plan.recipe.steps.filter((s) => s.name.startsWith('soft-')).length
    log(
      `ktp sweep ${recipe}: ${plan.points.length} point(s) × seeds ${cfg.seeds.join(',')}: ${trains} models to train, ${infers} soft-target file(s), output ${out}`,
    )
    const t0 = Date.now()
    const outcomes = await runRecipe(plan.recipe, {
      out,
      dryRun: Boolean(argv.dryRun),
      jobs: Number(argv.jobs ?? 1),
      log,
    })
    const ran = outcomes.filter((x) => x.state === 'ran').length
    const failed = outcomes.filter((x) => x.state === 'failed')
    if (argv.dryRun) return 0
    log(
      ran === 0 && failed.length === 0
        ? `ktp sweep ${recipe}: everything is up to date, nothing to do`
        : `ktp sweep ${recipe}: ran ${ran} step(s) in ${((Date.now() - t0) / 1000).toFixed(0)} s${failed.length ? `, ${failed.length} failed: ${failed.map((f) => f.name).join(', ')}` : ''}`,
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
