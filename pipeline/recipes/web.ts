import { readFileSync } from 'node:fs'
import { exportModel, exportOptions } from '../../stages/export/stage.js'
import type { EvalResult } from './evaluate.js'
import type { Step } from './runner.js'
import type { SystemRun, SystemsData } from './system-types.js'
import { STUDENT_NAMES, type SystemsConfig } from './systems-config.js'

/** What the site is made from besides the systems: the CMVN statistics and the features they describe. */
export interface WebInputs {
  cmvn: string
  /** The training features as `ktp features` wrote them (before CMVN): the page's front end. */
  rawFeatures: string
}

/**
 * `OUT/web/`: the best student as a static site (`ktp export --web`, issue 19). Best = lowest dev
 * WER over every student and seed (never the test set), decoded in the page with the acoustic scale
 * and insertion penalty its evaluation tuned on dev. Open it with `ktp serve OUT/web`.
 */
export function webSite(d: SystemsData, w: WebInputs, cfg: SystemsConfig, runs: SystemRun[]): Step {
  const students = runs.filter((r) => (STUDENT_NAMES as readonly string[]).includes(r.system))
  const out = d.p('web')
  return {
    name: 'web',
    config: { lm: cfg.decode.lm, v: 1 },
    inputs: [...students.flatMap((r) => [r.eval, d.p('exp', r.id)]), d.hmm, d.lmText, w.cmvn, w.rawFeatures],
    outputs: [out],
    fn: async () => {
      const scored = students.map((r) => ({ r, e: JSON.parse(readFileSync(r.eval, 'utf8')) as EvalResult }))
      // ties go to the earlier system of the recipe's order (stable sort)
      const best = scored.sort((a, b) => a.e.dev_wer - b.e.dev_wer)[0]
      if (!best) throw new Error('web: the recipe trained no student to export')
      const o = exportOptions.parse({
        web: true,
        lm: cfg.decode.lm,
        acousticScale: best.e.acoustic_scale,
        insertionPenalty: best.e.insertion_penalty,
      })
      process.stderr.write(
        `  web: ${best.r.id} (dev WER ${best.e.dev_wer.toFixed(2)}%, acoustic scale ${o.acousticScale}, insertion penalty ${o.insertionPenalty})\n`,
      )
      const code = await exportModel(o, {
        model: d.p('exp', best.r.id),
        output: out,
        hmm: d.hmm,
        lmText: d.lmText,
        cmvn: w.cmvn,
        features: w.rawFeatures,
      })
      if (code !== 0) throw new Error(`web: ktp export --web exited with ${code}`)
    },
  }
}
