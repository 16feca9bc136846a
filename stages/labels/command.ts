import { readFileSync } from 'node:fs'
import { basename, dirname, extname, join } from 'node:path'
import { defineCommand, runOptions } from '../../pipeline/io/command.js'
import { writeFileAtomic } from '../../pipeline/io/atomic-file.js'
import { type StageInput, arrowInput, runStage } from '../../pipeline/io/run-stage.js'
import { parseShard } from '../../pipeline/io/shard.js'
import { KtpError } from '../../schemas/errors.js'
import { hashBytes } from '../../schemas/fingerprint.js'
import { parseCtm } from '../formats/ctm.js'
import {
  type Inventory,
  type LabelMap,
  formatInventory,
  inventoryFromLabels,
  inventoryFromNames,
  loadLabelMap,
  parseInventory,
} from '../formats/inventory.js'
import { parseKaldiIntVectors } from '../formats/kaldi-text.js'
import { type LabelSource, aliStream, labelsOptions, labelsSchema, labelsStage } from './stage.js'

function readText(path: string, option: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    throw new KtpError('no-file', `${option}: cannot read ${path}`)
  }
}

/** The labels a CTM holds after the map (labels the map rejects fail later, per utterance). */
function ctmLabels(ctm: Map<string, { label: string }[]>, map: LabelMap | null): string[] {
  const out = new Set<string>()
  for (const segs of ctm.values()) {
    for (const s of segs) {
      try {
        const l = map ? map.apply(s.label) : s.label
        if (l !== null) out.add(l)
      } catch {
        /* reported per utterance */
      }
    }
  }
  return [...out]
}

/** Where a made-up inventory goes: `exp/train.labels.arrow` → `exp/train.labels.inventory.txt`. */
export function inventoryPathFor(output: string): string {
  return join(dirname(output), `${basename(output, extname(output))}.inventory.txt`)
}

export const labelsCommand = defineCommand({
  command: 'labels',
  describe: 'frame-level hard targets (labels@1) from a CTM alignment or Kaldi alignment text',
  options: labelsOptions,
  cliOptions: runOptions,
  examples: [
    [
      'ktp labels --ctm data/timit/train/phones.ctm --map timit48 --feats exp/train.arrow -o exp/train.labels.arrow',
      'TIMIT 48-phone frame targets',
    ],
    [
      'ktp labels --ali exp/ali.txt --inventory exp/pdfs.txt --feats exp/train.arrow -o exp/ali.arrow',
      'targets from a Kaldi alignment',
    ],
  ],
  run: async (opts, argv) => {
    if ((opts.ctm === undefined) === (opts.ali === undefined))
      throw new KtpError('usage', 'give exactly one of --ctm FILE or --ali FILE')
    if (opts.map && !opts.ctm)
      throw new KtpError('usage', '--map applies to CTM labels; Kaldi alignments are ids already')
    if (opts.ctm && !opts.feats)
      throw new KtpError('usage', '--ctm needs --feats FILE: the features decide how many frames each utterance has')
    const output = String(argv.output ?? '-')
    const file = (opts.ctm ?? opts.ali)!
    const text = readText(file, opts.ctm ? '--ctm' : '--ali')
    const map = opts.map ? loadLabelMap(opts.map) : null
    const ctm = opts.ctm ? parseCtm(text, file) : null
    const ali = opts.ali ? new Map(parseKaldiIntVectors(text, file).map((a) => [a.utt, a.values] as const)) : null

    let inv: Inventory
    const made = opts.inventory === undefined
    if (opts.inventory !== undefined) inv = parseInventory(readText(opts.inventory, '--inventory'), opts.inventory)
    else if (ctm)
      inv = map?.inventory
        ? inventoryFromNames(map.inventory)
        : inventoryFromLabels([...ctmLabels(ctm, map), ...(opts.fill ? [opts.fill] : [])])
    else {
      const max = [...ali!.values()].reduce((m, v) => v.reduce((a, x) => Math.max(a, x), m), -1)
      inv = inventoryFromNames(Array.from({ length: max + 1 }, (_, i) => String(i)))
    }
    let fill: number | undefined
    if (opts.fill !== undefined) {
      fill = inv.ids.get(opts.fill)
      if (fill === undefined) throw new KtpError('usage', `--fill ${opts.fill}: not a label of the inventory`)
    }
    const src: LabelSource = ctm ? { kind: 'ctm', ctm, map, fill, file } : { kind: 'ali', ali: ali!, file }
    const schema = labelsSchema(inv)
    let input: StageInput
    if (opts.feats) input = await arrowInput(opts.feats, ['features'])
    else
      input = {
        name: file,
        schema,
        fingerprint: hashBytes(text),
        total: ali!.size,
        stream: () => aliStream(ali!, schema),
      }

    const r = await runStage({
      stage: 'labels',
      options: {
        source: ctm ? 'ctm' : 'ali',
        alignment: hashBytes(text),
        inventory: inv.names,
        map: map ? hashBytes(map.content) : null,
        fill: opts.fill ?? null,
        tolerance: opts.tolerance,
        frameShift: opts.frameShift,
        frameLength: opts.frameLength,
      },
      input,
      schema,
      transform: labelsStage(src, inv, opts),
      output,
      shard: argv.shard ? parseShard(String(argv.shard)) : null,
      force: Boolean(argv.force),
      quiet: Boolean(argv.quiet),
    })
    if (made) {
      if (output === '-')
        process.stderr.write(
          `ktp labels: the inventory (${inv.names.length} classes) is in the stream's ktp.inventory metadata\n`,
        )
      else {
        writeFileAtomic(inventoryPathFor(output), formatInventory(inv))
        process.stderr.write(
          `ktp labels: wrote the inventory (${inv.names.length} classes) to ${inventoryPathFor(output)}; pass it as --inventory for other sets\n`,
        )
      }
    }
    return r.exitCode
  },
})
