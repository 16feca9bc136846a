import { existsSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { z } from 'zod'
import { KtpError } from '../../schemas/errors.js'
import { defineCommand } from '../io/command.js'
import { runRecipe } from '../recipes/runner.js'
import { RECIPES, configureRecipe, recipeChoice, recipeConfigOptions, recipeDataOptions } from '../recipes/select.js'
import { foldedSystemsRecipe, systemsRecipe } from '../recipes/systems.js'
import { chooseExecutor, executorCliOptions } from './executor-options.js'

/** What --folds takes: the bound is the corpus's (checked with the speakers, in recipe.folds). */
const FOLDS_EXPECTED = 'expected a whole number of folds, 1..the number of speakers in the corpus'

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
  folds: z
    .number({ error: FOLDS_EXPECTED })
    .int({ error: FOLDS_EXPECTED })
    .min(1, { error: FOLDS_EXPECTED })
    .optional()
    .describe(
      'speaker cross-validation: the first K folds (fsdd: test speaker f and dev speaker f+1 of the sorted ids; timit: test group f), each under OUT/fold-<speaker>/, and one report pooled over folds × seeds',
    ),
  demo: z
    .boolean()
    .default(false)
    .describe('the README demo: the quick fsdd recipe on the bundled data, then print the table'),
  ...executorCliOptions,
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
    [
      'ktp run fsdd --out exp/fsdd --quick --executor slurm --slurm-opts=--partition=cpu',
      'each stale step as a Slurm job',
    ],
    [
      'ktp run fsdd --out exp/cv --quick --folds 6',
      'leave-one-speaker-out over the 6 speakers, claims read as paired intervals',
    ],
  ],
  run: async ({ options: o, recipe: name, ...cli }) => {
    const log = (l: string) => process.stderr.write(`${l}\n`)
    const quick = o.quick || cli.demo
    // the configuration is validated here, before anything is planned or run (--dry-run too)
    const recipe = configureRecipe(name, recipeChoice({ ...o, quick }, cli))
    const out = resolve(cli.out ?? (cli.demo ? join(tmpdir(), 'ktp-demo') : giveOut()))
    const cfg = recipe.config
    const corpus = recipe.data()
    // the folds are checked here (speakers, --folds K), before any step is planned or run
    const folds = cli.folds === undefined ? null : recipe.folds(corpus, cli.folds)
    const plan = folds
      ? foldedSystemsRecipe(
          recipe.name,
          folds.map((fold) => ({ fold, ...recipe.prepFold(corpus, join(out, fold.name), fold) })),
          out,
        )
      : systemsRecipe(recipe.name, recipe.prep(corpus, out), out, cfg)
    const foldsNote = folds
      ? `, folds ${folds.map((f) => `${f.test.join('+')}(dev ${f.dev.join('+') || 'carved'})`).join(' ')}`
      : ''
    const { executor, only } = chooseExecutor(cli, out, cli.demo)
    log(
      `ktp run ${recipe.name}: ${quick ? 'quick' : 'full'} configuration, seeds ${cfg.seeds.join(',')}${foldsNote}, output ${out}${cli.executor === 'local' ? '' : `, executor ${cli.executor}`}`,
    )
    const t0 = Date.now()
    const outcomes = await runRecipe(
      plan,
      { out, dryRun: cli.dryRun, from: cli.from, until: cli.until, jobs: cli.jobs, log, ...only },
      executor,
    )
    const ran = outcomes.filter((x) => x.state === 'ran').length
    const failed = outcomes.filter((x) => x.state === 'failed')
    const submitted = outcomes.filter((x) => x.state === 'submitted').length
    if (submitted) log(`ktp run ${recipe.name}: submitted ${submitted} step(s); run the same command again to wait`)
    else if (!cli.dryRun && !only.only) {
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
