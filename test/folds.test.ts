import t from 'tap'
import { join } from 'node:path'
import { leaveOneSpeakerOut, speakerGroups } from '../pipeline/recipes/folds.js'
import { planOrder, stepKey } from '../pipeline/recipes/runner.js'
import { configureRecipe, recipeChoice } from '../pipeline/recipes/select.js'
import { foldedSystemsRecipe, systemsRecipe } from '../pipeline/recipes/systems.js'
import { ROOT, tmp } from './helpers.js'

const FSDD = join(ROOT, 'fixtures', 'fsdd')
const SIX = new Map(['yweweler', 'george', 'theo', 'lucas', 'jackson', 'nicolas'].map((s) => [s, 10]))

t.test('leave-one-speaker-out: sorted ids, dev the next speaker, the first K rotations', async (t) => {
  const folds = leaveOneSpeakerOut(SIX, 6, 'corpus')
  t.same(
    folds.map((f) => [f.name, f.test, f.dev]),
    [
      ['fold-george', ['george'], ['jackson']],
      ['fold-jackson', ['jackson'], ['lucas']],
      ['fold-lucas', ['lucas'], ['nicolas']],
      ['fold-nicolas', ['nicolas'], ['theo']],
      ['fold-theo', ['theo'], ['yweweler']],
      ['fold-yweweler', ['yweweler'], ['george']],
    ],
  )
  // fold f is the same whatever K: more folds add rotations, never change the ones already run
  t.same(leaveOneSpeakerOut(SIX, 2, 'corpus'), folds.slice(0, 2))
  t.same(
    folds.map((f) => f.test[0]),
    [...SIX.keys()].sort(),
    'every speaker is the test speaker exactly once',
  )
})

t.test('speaker groups (timit): speaker i in group i mod n, disjoint, covering', async (t) => {
  const spk = new Map(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((s) => [s, 3]))
  const folds = speakerGroups(spk, 3, 3, 'corpus')
  t.same(
    folds.map((f) => f.test),
    [
      ['a', 'd', 'g'],
      ['b', 'e'],
      ['c', 'f'],
    ],
  )
  t.same(speakerGroups(spk, 3, 1, 'corpus'), folds.slice(0, 1))
  // fewer speakers than groups: one speaker per group
  t.same(
    speakerGroups(new Map(['x', 'y', 'z'].map((s) => [s, 1])), 6, 3, 'c').map((f) => f.test),
    [['x'], ['y'], ['z']],
  )
})

t.test('bad folds: one line naming the problem, before anything is planned', async (t) => {
  t.throws(() => leaveOneSpeakerOut(SIX, 7, 'D'), { code: 'usage', message: /--folds 7: the corpus has only 6 fold/ })
  t.throws(() => leaveOneSpeakerOut(SIX, 0, 'D'), { code: 'usage', message: /expected an integer ≥ 1, got 0/ })
  t.throws(() => leaveOneSpeakerOut(SIX, 2.5, 'D'), { code: 'usage', message: /expected an integer ≥ 1, got 2.5/ })
  t.throws(() => leaveOneSpeakerOut(SIX, Number.NaN, 'D'), { code: 'usage', message: /integer/ })
  t.throws(() => leaveOneSpeakerOut(new Map([...SIX, ['ghost', 0]]), 2, 'D'), {
    code: 'usage',
    message: /D: speaker 'ghost' has no utterances/,
  })
  t.throws(() => leaveOneSpeakerOut(new Map([['solo', 50]]), 1, 'D'), {
    code: 'usage',
    message: /D: 1 speaker\(s\) \(solo\); --folds needs at least 3/,
  })
  t.throws(
    () =>
      leaveOneSpeakerOut(
        new Map([
          ['a', 5],
          ['b', 5],
        ]),
        1,
        'D',
      ),
    { message: /2 speaker\(s\)/ },
  )
  t.throws(() => speakerGroups(SIX, 4, 5, 'D'), { message: /--folds 5: the corpus has only 4 fold/ })
})

t.test('the folded fsdd plan: each fold a whole run in its own folder, one pooled report', async (t) => {
  const out = tmp('ktp-folds-plan-')
  const recipe = configureRecipe('fsdd', recipeChoice({ quick: true, seeds: 2, set: [] }, { data: FSDD }))
  const folds = recipe.folds(FSDD, 3)
  const plan = foldedSystemsRecipe(
    'fsdd',
    folds.map((fold) => ({ fold, ...recipe.prepFold(FSDD, join(out, fold.name), fold) })),
    out,
  )
  planOrder(plan) // unique names, unique outputs, no cycle
  // a fold is the single-split plan without its `web` step (the site is made for a single split's best student)
  const singleAll = systemsRecipe('fsdd', recipe.prep(FSDD, out), out, recipe.config)
  t.ok(
    singleAll.steps.some((s) => s.name === 'web'),
    'the single split writes the site',
  )
  const single = { steps: singleAll.steps.filter((s) => s.name !== 'web') }
  t.notOk(
    plan.steps.some((s) => s.name.endsWith('/web')),
    'no fold writes a site',
  )
  t.equal(plan.steps.length, 3 * single.steps.length + 1, 'three folds of the single-split plan, and the pooled report')
  for (const f of folds) {
    const own = plan.steps.filter((s) => s.name.startsWith(`${f.name}/`))
    t.equal(own.length, single.steps.length)
    t.ok(
      own.every((s) => s.outputs.every((o) => o.startsWith(join(out, f.name)))),
      `${f.name}: every output under OUT/${f.name}`,
    )
  }
  const connect = plan.steps.find((s) => s.name === 'fold-jackson/connect-digits')!
  t.match(connect.cmd!.join(' '), /--test-speakers jackson --dev-speakers lucas$/)
  const report = plan.steps.find((s) => s.name === 'report')!
  t.equal(report.inputs.length, 3 * 2 * 7, 'the pooled report reads 3 folds × 2 seeds × 7 systems')
  t.ok(report.outputs.includes(join(out, 'report.md')))

  // a fold's steps do not depend on how many folds there are: adding folds reruns only new ones
  const two = foldedSystemsRecipe(
    'fsdd',
    recipe.folds(FSDD, 2).map((fold) => ({ fold, ...recipe.prepFold(FSDD, join(out, fold.name), fold) })),
    out,
  )
  const changed: string[] = []
  for (const s of two.steps.filter((s) => s.name !== 'report')) {
    const same = plan.steps.find((x) => x.name === s.name)
    if (!same || (await stepKey(s)) !== (await stepKey(same))) changed.push(s.name)
  }
  t.same(changed, [], `the ${two.steps.length - 1} steps of folds 1-2 have the same keys with 2 or 3 folds`)
})
