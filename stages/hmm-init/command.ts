import { z } from 'zod'
import { defineCommand } from '../../pipeline/io/command.js'
import { parseOptions } from '../../pipeline/io/options.js'
import { writeFileAtomic } from '../../pipeline/io/atomic-file.js'
import { KTP_VERSION } from '../../pipeline/io/version.js'
import { KtpError } from '../../schemas/errors.js'
import { formatInventory, hmmInitOptions, initHmm, writeHmm } from '../hmm/model.js'

const hmmInitCli = z.object({
  output: z.string().describe('the HMM model file to write (JSON, ktp.hmm@1)'),
  inventory: z
    .string()
    .optional()
    .describe('the "pdf-name id" inventory file to write (default: the output with .json replaced by .pdfs.txt)'),
})

/** Where the inventory goes unless --inventory says otherwise: hmm.json → hmm.pdfs.txt. */
export function defaultInventoryPath(output: string): string {
  return output.endsWith('.json') ? `${output.slice(0, -5)}.pdfs.txt` : `${output}.pdfs.txt`
}

export const hmmInitCommand = defineCommand({
  command: 'hmm-init',
  describe: 'create an HMM model (units, lexicon, silence, flat transitions) and its pdf inventory',
  options: hmmInitOptions,
  cliOptions: hmmInitCli,
  examples: [
    [
      'ktp hmm-init --whole-word-digits --states 5 --silence sil -o exp/hmm0.json',
      'FSDD: 5-state digit words + silence',
    ],
    ['ktp hmm-init --phones-from timit48 --states 3 -o exp/hmm0.json', 'TIMIT: a 48-phone loop'],
  ],
  run: async (opts, argv) => {
    const a = parseOptions(hmmInitCli, argv)
    if (a.output === '-')
      throw new KtpError('usage', '--output: hmm-init writes a file (and its inventory next to it), got -')
    const model = initHmm(opts)
    const inventory = a.inventory ?? defaultInventoryPath(a.output)
    writeHmm(a.output, model, { stage: 'hmm-init', options: opts, ktp_version: KTP_VERSION })
    writeFileAtomic(inventory, formatInventory(model.units))
    process.stderr.write(
      `ktp hmm-init: ${model.lexicon.size} words, ${model.units.units.length} units, ${model.units.numPdfs} pdfs` +
        `${model.silence ? `, silence unit ${model.silence}` : ''}; wrote ${a.output} and ${inventory}\n`,
    )
    return 0
  },
})
