import t from 'tap'
import fc from 'fast-check'
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { readAudioHeader } from '../stages/formats/audio-header.js'
import { foldsRecipe } from '../pipeline/recipes/folds.js'
import { planOrder, runRecipe } from '../pipeline/recipes/runner.js'
import { configureRecipe, recipeChoice } from '../pipeline/recipes/select.js'
import { timitRecipe } from '../pipeline/recipes/timit.js'
import { TIMIT_QUICK } from '../pipeline/recipes/timit-config.js'
import { chooseDevSpeakers } from '../pipeline/recipes/timit-data.js'
import { ROOT, tmp } from './helpers.js'

const FSDD = join(ROOT, 'fixtures', 'fsdd', 'recordings')

/**
 * A TIMIT-layout corpus (flat: one folder per speaker) made of bundled FSDD recordings: six
 * speakers, three sentences each, every file one phone-aligned "word" (h# sh iy h#).
 */
function tinyTimit(): { dir: string; speakers: string[] } {
  const dir = tmp('ktp-tiny-timit-')
  const fsddSpeakers = ['george', 'jackson', 'lucas', 'nicolas', 'theo', 'yweweler']
  const speakers = fsddSpeakers.map((_, i) => `${i % 2 ? 'm' : 'f'}spk${i}`)
  fsddSpeakers.forEach((name, i) => {
    const folder = join(dir, `dr1-${speakers[i]}`)
    mkdirSync(folder, { recursive: true })
    for (let k = 0; k < 3; k++) {
      const wav = join(FSDD, `${k}_${name}_0.wav`)
      const n = readAudioHeader(wav)!.frames
      const cut = [0, Math.floor(n / 4), Math.floor(n / 2), Math.floor((3 * n) / 4), n]
      copyFileSync(wav, join(folder, `si${k}.wav`))
      const phones = ['h#', 'sh', 'iy', 'h#']
      writeFileSync(join(folder, `si${k}.phn`), phones.map((p, j) => `${cut[j]} ${cut[j + 1]} ${p}\n`).join(''))
      writeFileSync(join(folder, `si${k}.txt`), `0 ${n} She.\n`)
    }
  })
  return { dir, speakers }
}

const speakersOf = (dataDir: string) =>
  new Set(
    readFileSync(join(dataDir, 'utt2spk'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' ')[1]),
  )

t.test('dev speakers: a proper, non-empty part of the training speakers, stable', async (t) => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.stringMatching(/^[a-z]{3,6}[0-9]$/), { minLength: 2, maxLength: 40 }),
      fc.double({ min: 0.01, max: 0.99, noNaN: true }),
      (speakers, fraction) => {
        const dev = chooseDevSpeakers(speakers, fraction)
        return (
          dev.length >= 1 &&
          dev.length < speakers.length &&
          dev.every((s) => speakers.includes(s)) &&
          JSON.stringify(chooseDevSpeakers([...speakers].reverse(), fraction)) === JSON.stringify(dev)
        )
      },
    ),
  )
  t.same(chooseDevSpeakers(['only'], 0.5), [], 'one speaker: none to spare')
})

t.test('the timit recipe: dev speakers leave training (dev shares no speaker with train)', async (t) => {
  const { dir, speakers } = tinyTimit()
  const out = tmp('ktp-timit-recipe-')
  const cfg = { ...structuredClone(TIMIT_QUICK), split: { devFraction: 0.1, testFraction: 0.34 } }
  const recipe = timitRecipe(dir, out, cfg)
  const step = (name: string) => recipe.steps.find((s) => s.name === name)!
  // the plan: everything downstream reads the data dirs the dev split writes, not prepare's
  t.same(step('dev-split').inputs, [join(out, 'corpus', 'train'), join(out, 'corpus', 'test')])
  t.same(step('features-train').inputs, [join(out, 'data', 'train')])
  t.same(step('features-dev').inputs, [join(out, 'data', 'dev')])
  planOrder(recipe)

  const done = await runRecipe(recipe, { out, until: 'hmm-priors', log: () => {} })
  const failed = done.filter((s) => s.state === 'failed')
  t.same(failed, [], 'the data side runs')
  t.equal(done.find((s) => s.name === 'labels-train')?.state, 'ran')

  const train = speakersOf(join(out, 'data', 'train'))
  const dev = speakersOf(join(out, 'data', 'dev'))
  const test = speakersOf(join(out, 'data', 'test'))
  const corpusTrain = speakersOf(join(out, 'corpus', 'train'))
  t.ok(dev.size >= 1, `dev speakers: ${[...dev]}`)
  t.same(
    [...dev].filter((s) => train.has(s)),
    [],
    'dev ∩ train = ∅',
  )
  t.same(
    [...test].filter((s) => train.has(s) || dev.has(s)),
    [],
    'test shares no speaker with train or dev',
  )
  t.same([...train, ...dev].sort(), [...corpusTrain].sort(), 'train and dev partition the training speakers')
  t.same([...train, ...dev, ...test].sort(), [...speakers].sort())
  const split = JSON.parse(readFileSync(join(out, 'dev-split.json'), 'utf8'))
  t.same(split, { devSpeakers: [...dev], trainSpeakers: [...train], sameAsTrain: false })
  // the phone alignments follow their utterances: no dev utterance left in training's phones.ctm
  const ctmUtts = (s: string) =>
    new Set(
      readFileSync(join(out, 'data', s, 'phones.ctm'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(' ')[0]),
    )
  const trainUtts = ctmUtts('train')
  t.equal(trainUtts.size, 3 * train.size)
  t.ok([...ctmUtts('dev')].every((u) => !trainUtts.has(u)))
  const lm = readFileSync(join(out, 'lm', 'train.48.txt'), 'utf8')
    .trim()
    .split('\n')
  t.equal(lm.length, 3 * train.size, 'the LM text is the training speakers only')
  t.match(lm[0], /^[a-z0-9]+-si0 sil sh iy sil$/, '61 phones folded to 48 (h# is sil)')
})

t.test('timit --folds: test groups rotate, and in every fold dev shares no speaker with train', async (t) => {
  const { dir, speakers } = tinyTimit()
  const out = tmp('ktp-timit-folds-')
  const recipe = configureRecipe('timit', recipeChoice({ quick: true, set: ['split.foldGroups=3'] }, { data: dir }))
  const folds = recipe.folds(dir, 3)
  const sorted = [...speakers].sort()
  t.same(
    folds.map((f) => f.test),
    [0, 1, 2].map((g) => sorted.filter((_, i) => i % 3 === g)),
    'speaker i (sorted) tests in fold i mod 3',
  )
  // the data side of each fold up to the dev split: prepare (the fold's test group) and dev-split
  const perFold = folds.map((fold) => {
    const { prep } = recipe.prepFold(dir, join(out, fold.name), fold)
    return {
      fold,
      recipe: { name: 'timit', steps: prep.steps.filter((s) => ['prepare', 'dev-split'].includes(s.name)) },
    }
  })
  const done = await runRecipe(foldsRecipe('timit', perFold, []), { out, log: () => {} })
  t.same(
    done.filter((s) => s.state !== 'ran'),
    [],
    'every fold prepared and split',
  )
  for (const f of folds) {
    const d = (s: string) => speakersOf(join(out, f.name, 'data', s))
    const [train, dev, test] = [d('train'), d('dev'), d('test')]
    t.same([...test].sort(), f.test, `${f.name}: test is the fold's group`)
    t.ok(dev.size >= 1, `${f.name}: dev speakers ${[...dev]}`)
    t.same(
      [...dev].filter((s) => train.has(s) || test.has(s)),
      [],
      `${f.name}: dev ∩ (train ∪ test) = ∅`,
    )
    t.same([...train, ...dev, ...test].sort(), sorted, `${f.name}: train, dev and test partition the speakers`)
  }
  t.throws(() => recipe.folds(dir, 4), { code: 'usage', message: /--folds 4: the corpus has only 3 fold/ })
  const split = configureRecipe('timit', recipeChoice({ quick: true, set: [] }, { data: dir, testFraction: 0.3 }))
  t.throws(() => split.folds(dir, 2), { code: 'usage', message: /--folds chooses the test speakers itself/ })
})
