import type { RecordBatch, Schema } from 'apache-arrow'
import { z } from 'zod'
import { openArrow } from '../../pipeline/io/arrow-source.js'
import { drain } from '../../pipeline/io/run-stage.js'
import { KTP_VERSION } from '../../pipeline/io/version.js'
import { KtpError } from '../../schemas/errors.js'
import { getVector, uttId } from '../../schemas/utterance.js'
import { estimatePriors, reestimateTransitions } from '../hmm/index.js'
import { checkInventory, readHmm, writeHmm, type HmmModel } from '../hmm/model.js'

/**
 * `ktp hmm-update`: re-estimate an HMM model's pdf priors and transition probabilities from
 * frame labels (labels@1, e.g. `ktp align` output). It reads whole, finished label files, so
 * the counts cover every utterance whatever resumptions or shards produced them (counting
 * inside `ktp align` would miss the utterances a resumed run skipped).
 *
 * Transitions are counted on pdf sequences: a frame stays when the next frame has the same pdf.
 * That is exact for multi-state units; only two adjacent instances of the same one-state unit
 * ("s s" in a phone loop) are seen as one stay, which the pseudo-counts make harmless.
 */
export const hmmUpdateOptions = z.object({
  priors: z
    .boolean()
    .default(true)
    .describe('re-estimate the pdf priors (relative frame counts; --no-priors keeps the old ones)'),
  transitions: z
    .boolean()
    .default(true)
    .describe('re-estimate the self-loop probabilities (--no-transitions keeps the old ones)'),
  priorFloor: z
    .number()
    .positive()
    .lt(1)
    .default(1e-5)
    .describe('floor of every prior before renormalising, so an unseen pdf gets no huge bonus'),
  transitionFloor: z
    .number()
    .positive()
    .lt(0.5)
    .default(0.01)
    .describe('self-loop probabilities are kept within [floor, 1 - floor]'),
})
export type HmmUpdateOptions = z.infer<typeof hmmUpdateOptions>

/** A labels stream must use this model's classes: same count and, when named, same names. */
export function checkLabelsSchema(schema: Schema, source: string, m: HmmModel): void {
  const n = schema.metadata.get('ktp.num_classes')
  if (n !== undefined && Number(n) !== m.units.numPdfs) {
    throw new KtpError(
      'wrong-classes',
      `${source}: labels have ktp.num_classes ${n} but the HMM has ${m.units.numPdfs} pdfs`,
    )
  }
  checkInventory(schema, source, m)
}

/** Collects label sequences (copied: the batches they come from are released). */
export class LabelCounts {
  readonly alignments: Int32Array[] = []
  frames = 0
  constructor(private readonly numPdfs: number) {}

  add(batch: RecordBatch, source: string): void {
    const v = getVector<Int32Array>(batch, 'labels')
    for (let i = 0; i < v.length; i++) {
      if (!(v[i]! >= 0 && v[i]! < this.numPdfs)) {
        throw new KtpError(
          'bad-label',
          `${source}: utterance '${uttId(batch)}' frame ${i} has label ${v[i]}, outside [0, ${this.numPdfs})`,
        )
      }
    }
    this.alignments.push(Int32Array.from(v))
    this.frames += v.length
  }
}

export function updateHmm(m: HmmModel, counts: LabelCounts, o: HmmUpdateOptions): HmmModel {
  if (counts.frames === 0) throw new KtpError('empty', 'no labelled frames to estimate from')
  const P = m.units.numPdfs
  const identity = Int32Array.from({ length: P }, (_, i) => i)
  return {
    ...m,
    priors: o.priors ? estimatePriors(P, counts.alignments, o.priorFloor) : m.priors,
    transitions: o.transitions
      ? reestimateTransitions(
          P,
          counts.alignments.map((states) => ({ states, pdfOfState: identity })),
          { floor: o.transitionFloor },
        )
      : m.transitions,
  }
}

/**
 * `ktp hmm-update`: count every label file (whole, one after the other; - is stdin), then write
 * the re-estimated model to `output` (atomically, so it may be the model it was read from).
 */
export async function hmmUpdate(
  opts: HmmUpdateOptions,
  f: { hmm: string; output: string; labels: string[] },
): Promise<number> {
  if (f.output === '-') throw new KtpError('usage', '--output: hmm-update writes a file, got -')
  const model = readHmm(f.hmm)
  const counts = new LabelCounts(model.units.numPdfs)
  for (const name of f.labels) {
    const src = await openArrow(name, ['labels'])
    checkLabelsSchema(src.schema, src.name, model)
    await drain(
      src.stream(),
      (b) => counts.add(b, src.name),
      () => false,
    )
  }
  const updated = updateHmm(model, counts, opts)
  writeHmm(f.output, updated, { stage: 'hmm-update', options: opts, from: f.hmm, ktp_version: KTP_VERSION })
  process.stderr.write(
    `ktp hmm-update: ${counts.alignments.length} utterances, ${counts.frames} frames; wrote ${f.output}\n`,
  )
  return 0
}
