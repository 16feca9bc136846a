import { existsSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { z } from 'zod'
import { KtpError } from '../../schemas/errors.js'
import { defineCommand } from '../io/command.js'
import { runRecipe } from '../recipes/runner.js'
import { RECIPES, configureRecipe, recipeChoice, recipeConfigOptions, recipeDataOptions } from '../recipes/select.js'
import { systemsRecipe } from '../recipes/systems.js'

const runCli = z.object({
  out: z
    .string()
    .optional()
    .describe('output directory (default for --demo: a ktp-demo folder in the system temp dir)'),
  ...recipeDataOptions,
  dryRun: z.boolean().default(false).describe('print the plan (what would run and why) and run nothing'),
  from: z.string().optional().describe('run from this step on (earlier steps must be up to date)'),
  until: z.string().optional().describe('run up to this step'),
  jobs: z.number().int().min(1).default(1).describe('independent steps to run at once'),
  demo: z
    .boolean()
    .default(false)
    .describe('the README demo: the quick fsdd recipe on the bundled data, then print the table'),
})

export const runCommand = defineCommand({
  command: 'run <recipe>',
  describe:
    'run a recipe (fsdd or timit; --config for a whole JSON configuration) as a DAG of stages, rebuilding only what is stale',
  options: z.object(recipeConfigOptions),
  cli: runCli.shape,
  positionals: { recipe: z.string().describe(`the recipe: ${RECIPES.join(' or ')} (built in)`) },
  examples: [
    ['ktp run fsdd --out exp/fsdd --quick', 'the quick configuration'],
    ['ktp run fsdd --out exp/fsdd --seeds 3 --set students.lstm-kt.temperature=4', 'three seeds, one student changed'],
  ],
  run: async ({ options: o, recipe: name, ...cli }) => {
    const log = (l: string) => process.stderr.write(`${l}\n`)
    const quick = o.quick || cli.demo
    // the configuration is validated here, before anything is planned or run (--dry-run too)
    const recipe = configureRecipe(name, recipeChoice({ ...o, quick }, cli))
    const out = resolve(cli.out ?? (cli.demo ? join(tmpdir(), 'ktp-demo') : giveOut()))
    const cfg = recipe.config
    const plan = systemsRecipe(recipe.name, recipe.prep(recipe.data(), out), out, cfg)
    log(
      `ktp run ${recipe.name}: ${quick ? 'quick' : 'full'} configuration, seeds ${cfg.seeds.join(',')}, output ${out}`,
    )
    const t0 = Date.now()
    const outcomes = await runRecipe(plan, {
      out,
      dryRun: cli.dryRun,
      from: cli.from,
      until: cli.until,
      jobs: cli.jobs,
      log,
    })
    const ran = outcomes.filter((x) => x.state === 'ran').length
    const failed = outcomes.filter((x) => x.state === 'failed')
    if (!cli.dryRun) {
      log(
        ran === 0 && failed.length === 0
          ? `ktp run ${recipe.name}: everything is up to date, nothing to do`
          : `ktp run ${recipe.name}: ran ${ran} step(s) in ${((Date.now() - t0) / 1000).toFixed(0)} s${failed.length ? `, ${failed.length} failed: ${failed.map((f) => f.name).join(', ')}` : ''}`,
      )
      const report = join(out, 'report.md')
      if (existsSync(report) && failed.length === 0) {
        const md = readFileSync(report, 'utf8')
        const table = md.split('\n').filter((l) => l.startsWith('|') || l.startsWith('- **C'))
        process.stdout.write(`${table.join('\n')}\n\nReport: ${report}\nResults: ${join(out, 'results.json')}\n`)
      }
    }
    return failed.length ? 1 : 0
  },
})

function giveOut(): never {
  throw new KtpError('usage', 'give --out DIR')
}
