import { writeFileAtomic } from '../../pipeline/io/atomic-file.js'
import { KTP_VERSION } from '../../pipeline/io/version.js'
import { KtpError } from '../../schemas/errors.js'
import { type HmmInitOptions, formatInventory, initHmm, writeHmm } from '../hmm/model.js'

/**
 * `ktp hmm-init`: a new HMM model (units from a lexicon, digit words or a phone set; optional
 * silence; flat transitions) and its pdf inventory, the "name id" list a trainer's classes are.
 * The options and the model itself live with the HMM code (stages/hmm/model.ts), which align,
 * decode and hmm-update share.
 */
export { hmmInitOptions, type HmmInitOptions } from '../hmm/model.js'

/** Where the inventory goes unless --inventory says otherwise: hmm.json → hmm.pdfs.txt. */
export function defaultInventoryPath(output: string): string {
  return output.endsWith('.json') ? `${output.slice(0, -5)}.pdfs.txt` : `${output}.pdfs.txt`
}

/** Write the model to `output` and its inventory next to it (or to `inventory`). */
export function hmmInit(opts: HmmInitOptions, f: { output: string; inventory?: string }): number {
  if (f.output === '-')
    throw new KtpError('usage', '--output: hmm-init writes a file (and its inventory next to it), got -')
  const model = initHmm(opts)
  const inventory = f.inventory ?? defaultInventoryPath(f.output)
  writeHmm(f.output, model, { stage: 'hmm-init', options: opts, ktp_version: KTP_VERSION })
  writeFileAtomic(inventory, formatInventory(model.units))
  process.stderr.write(
    `ktp hmm-init: ${model.lexicon.size} words, ${model.units.units.length} units, ${model.units.numPdfs} pdfs` +
      `${model.silence ? `, silence unit ${model.silence}` : ''}; wrote ${f.output} and ${inventory}\n`,
  )
  return 0
}
