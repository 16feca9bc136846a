import { readFileSync } from 'node:fs'
import { basename, dirname, extname, join } from 'node:path'
import type { RecordBatch, Schema } from 'apache-arrow'
import { z } from 'zod'
import { KtpError, UttError } from '../../schemas/errors.js'
import { hashBytes } from '../../schemas/fingerprint.js'
import { makeSchema } from '../../schemas/kinds.js'
import { makeUttBatch, numFrames, uttId } from '../../schemas/utterance.js'
import { writeFileAtomic } from '../../pipeline/io/atomic-file.js'
import type { OpenInput, StagePlan } from '../../pipeline/io/command.js'
import { arrayStream } from '../../pipeline/io/pull.js'
import type { StageInput, Transform } from '../../pipeline/io/run-stage.js'
import { type CtmSegment, parseCtm } from '../formats/ctm.js'
import {
  type Inventory,
  type LabelMap,
  formatInventory,
  inventoryFromLabels,
  inventoryFromNames,
  loadLabelMap,
  numClasses,
  parseInventory,
} from '../formats/inventory.js'
import { parseKaldiIntVectors } from '../formats/kaldi-text.js'

/**
 * `ktp labels`: frame-level hard targets (labels@1) from a time alignment (CTM) or from Kaldi
 * alignment text (`utt id id …`).
 *
 * CTM → frames. With Kaldi's snip-edges framing, frame t covers [t·shift, t·shift + length) ms, so
 * its centre is t·shift + length/2; the frame gets the label of the segment [start, start+dur)
 * under its centre (half-open, so a boundary exactly on a centre belongs to the later segment).
 * Segments must not overlap; if they do, the latest-starting one under the centre wins.
 *
 * Deleted labels (a map sending a label to nothing, e.g. TIMIT's glottal stop `q` under timit48):
 * the segment's frames are shared between its neighbours — the first half takes the label before,
 * the second half the label after (all to one side at an utterance edge). Splitting rather than
 * giving everything to one side keeps both neighbouring phones' durations closest to the truth.
 *
 * Frames no segment covers get `--fill`; without it, a run of at most `--tolerance` frames at
 * either edge takes the nearest label (the usual off-by-a-frame between an alignment and the
 * features' framing), and anything else is a per-utterance error. If the alignment reaches more
 * than `--tolerance` frames past the features' end, the two do not belong together: an error too.
 */
export const labelsOptions = z.object({
  ctm: z
    .string()
    .optional()
    .describe('CTM alignment (utt channel start dur label), e.g. DATADIR/phones.ctm from ktp prepare timit'),
  ali: z.string().optional().describe('Kaldi alignment text (utt id id …, as ali-to-pdf … ark,t:- writes)'),
  feats: z
    .string()
    .optional()
    .describe("features Arrow file (or -) giving each utterance's frame count; required with --ctm"),
  inventory: z
    .string()
    .optional()
    .describe(
      'label inventory (name id per line, phones.txt style); default: made from the data and written next to the output',
    ),
  map: z
    .string()
    .optional()
    .describe('fold CTM labels first: timit48 (61→48, q deleted), timit39, or a file of "from [to]" lines'),
  fill: z.string().optional().describe('label for frames no segment covers (default: an error beyond --tolerance)'),
  tolerance: z
    .number()
    .int()
    .min(0)
    .default(2)
    .describe('frames of length mismatch accepted at the edges (nearest label extended or extra labels dropped)'),
  frameShift: z.number().positive().default(10).describe('frame shift in ms (must match the features)'),
  frameLength: z
    .number()
    .positive()
    .default(25)
    .describe('frame length in ms (must match the features; snip-edges framing)'),
})
export type LabelsOptions = z.infer<typeof labelsOptions>

/** Per-utterance failure of the pure functions; the stage turns it into a UttError. */
export class LabelError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

const UNCOVERED = -1
const DELETED = -2
// Times come from text in seconds; 1 ns of slack keeps 0.0325 from parsing just past a centre at 32.5 ms.
const EPS = 1e-9

export interface TimedLabel {
  start: number
  end: number
  /** class id, or null for a deleted label. */
  id: number | null
}

export interface FramingOptions {
  frameShift: number
  frameLength: number
  tolerance: number
  /** class id for uncovered frames. */
  fill?: number
}

/** Frames whose centre lies before `end` seconds. */
export function framesBefore(end: number, shiftMs: number, lengthMs: number): number {
  return Math.max(0, Math.ceil((end * 1000 - lengthMs / 2) / shiftMs - EPS))
}

/** Give runs of deleted frames to their neighbours, half each (see the file comment). */
function shareDeleted(lab: Int32Array): void {
  const n = lab.length
  for (let a = 0; a < n; a++) {
    if (lab[a] !== DELETED) continue
    let b = a
    while (b < n && lab[b] === DELETED) b++
    const before = a > 0 && lab[a - 1] >= 0 ? lab[a - 1] : -1
    const after = b < n && lab[b] >= 0 ? lab[b] : -1
    const mid = before < 0 ? a : after < 0 ? b : a + Math.ceil((b - a) / 2)
    for (let t = a; t < b; t++) lab[t] = t < mid ? before : after
    a = b - 1
  }
}

/** Frame labels from timed segments (sorted by start) for an utterance of `frames` frames. */
export function ctmFrameLabels(segs: TimedLabel[], frames: number, o: FramingOptions): Int32Array {
  const lab = new Int32Array(frames).fill(UNCOVERED)
  let j = -1
  for (let t = 0; t < frames; t++) {
    const c = (t * o.frameShift + o.frameLength / 2) / 1000
    while (j + 1 < segs.length && segs[j + 1].start <= c + EPS) j++
    if (j >= 0 && c < segs[j].end - EPS) lab[t] = segs[j].id ?? DELETED
  }
  const lastEnd = segs.reduce((m, s) => Math.max(m, s.end), 0)
  const want = framesBefore(lastEnd, o.frameShift, o.frameLength)
  if (want > frames + o.tolerance) {
    throw new LabelError(
      'length-mismatch',
      `the alignment runs to ${lastEnd.toFixed(3)} s (${want} frames) but the features have ${frames} frames (tolerance ${o.tolerance})`,
    )
  }
  shareDeleted(lab)
  if (o.fill !== undefined) {
    for (let t = 0; t < frames; t++) if (lab[t] < 0) lab[t] = o.fill
    return lab
  }
  let first = 0
  while (first < frames && lab[first] < 0) first++
  let last = frames - 1
  while (last >= 0 && lab[last] < 0) last--
  if (first === frames)
    throw new LabelError('uncovered', `none of the ${frames} frames is covered by the alignment (use --fill LABEL?)`)
  if (first > o.tolerance || frames - 1 - last > o.tolerance) {
    const [n, where] = first > o.tolerance ? [first, 'at the start'] : [frames - 1 - last, 'at the end']
    throw new LabelError(
      'uncovered',
      `${n} frames ${where} are not covered by the alignment (tolerance ${o.tolerance}; use --fill LABEL or a larger --tolerance)`,
    )
  }
  lab.fill(lab[first], 0, first)
  lab.fill(lab[last], last + 1)
  for (let t = first; t <= last; t++) {
    if (lab[t] < 0)
      throw new LabelError(
        'uncovered',
        `frame ${t} (centre ${((t * o.frameShift + o.frameLength / 2) / 1000).toFixed(4)} s) falls in a gap of the alignment; use --fill LABEL`,
      )
  }
  return lab
}

/** CTM segments → timed class ids through the map and inventory. */
export function ctmToTimed(segs: CtmSegment[], inv: Inventory, map: LabelMap | null): TimedLabel[] {
  return segs.map((s) => {
    let label: string | null = s.label
    try {
      if (map) label = map.apply(label)
    } catch (err) {
      throw new LabelError('unknown-label', (err as Error).message)
    }
    let id: number | null = null
    if (label !== null) {
      const i = inv.ids.get(label)
      if (i === undefined)
        throw new LabelError('unknown-label', `label '${label}' at ${s.start} s is not in the inventory`)
      id = i
    }
    return { start: s.start, end: s.start + s.dur, id }
  })
}

/**
 * Kaldi alignment → labels for `frames` frames: ids checked against the inventory; a length
 * within tolerance of the features' is padded (last id repeated) or cut.
 */
export function aliFrameLabels(ali: Int32Array, frames: number | null, inv: Inventory, tolerance: number): Int32Array {
  const n = numClasses(inv)
  for (let t = 0; t < ali.length; t++) {
    if (ali[t] < 0 || ali[t] >= n || inv.names[ali[t]] === null) {
      throw new LabelError('bad-label-id', `frame ${t}: label id ${ali[t]} is not in the inventory (0 ≤ id < ${n})`)
    }
  }
  if (frames === null || frames === ali.length) return ali
  if (Math.abs(frames - ali.length) > tolerance) {
    throw new LabelError(
      'length-mismatch',
      `the alignment has ${ali.length} frames but the features have ${frames} (tolerance ${tolerance})`,
    )
  }
  if (ali.length === 0)
    throw new LabelError('length-mismatch', `the alignment is empty but the features have ${frames} frames`)
  const out = new Int32Array(frames)
  out.set(ali.subarray(0, Math.min(frames, ali.length)))
  out.fill(ali[ali.length - 1], ali.length)
  return out
}

export function labelsSchema(inv: Inventory): Schema {
  return makeSchema('labels', {
    metadata: { 'ktp.num_classes': String(numClasses(inv)), 'ktp.inventory': JSON.stringify(inv.names) },
  })
}

/** Where the per-utterance labels come from: either source, keyed by utterance. */
export type LabelSource =
  | { kind: 'ctm'; ctm: Map<string, CtmSegment[]>; map: LabelMap | null; fill?: number; file: string }
  | { kind: 'ali'; ali: Map<string, Int32Array>; file: string }

/**
 * The stage: features (for frame counts) — or, for an alignment alone, labels batches of its
 * raw ids — in; labels@1 out. Failures are UttErrors naming utterance and alignment file.
 */
export function labelsStage(
  src: LabelSource,
  inv: Inventory,
  o: Pick<LabelsOptions, 'tolerance' | 'frameShift' | 'frameLength'>,
  schema = labelsSchema(inv),
): Transform {
  return (s) =>
    s.map((b: RecordBatch) => {
      const utt = uttId(b)
      const frames = numFrames(b)
      try {
        let lab: Int32Array
        if (src.kind === 'ctm') {
          const segs = src.ctm.get(utt)
          if (!segs) throw new LabelError('no-alignment', 'no segments for this utterance in the CTM')
          lab = ctmFrameLabels(ctmToTimed(segs, inv, src.map), frames, { ...o, fill: src.fill })
        } else {
          const ali = src.ali.get(utt)
          if (!ali) throw new LabelError('no-alignment', 'no alignment for this utterance')
          const isFeats = b.schema.fields.some((f) => f.name === 'feats')
          lab = aliFrameLabels(ali, isFeats ? frames : null, inv, o.tolerance)
        }
        return makeUttBatch(schema, { utt, labels: lab })
      } catch (err) {
        if (err instanceof LabelError) throw new UttError(err.code, utt, err.message, src.file)
        throw err
      }
    })
}

/** An alignment alone as a stage input stream (labels batches of the raw ids, in file order). */
export function aliStream(ali: Map<string, Int32Array>, schema: Schema): Highland.Stream<RecordBatch> {
  return arrayStream([...ali]).map(([utt, values]) => makeUttBatch(schema, { utt, labels: values }))
}

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

/**
 * A run of `ktp labels`: the alignment (and map, inventory) read and checked first; the input is
 * the features (for frame counts) or, without --feats, the alignment itself. An inventory made
 * from the data is written next to `output` (or left in the stream's metadata on stdout).
 */
export async function planLabels(opts: LabelsOptions, output: string, open: OpenInput): Promise<StagePlan> {
  if ((opts.ctm === undefined) === (opts.ali === undefined))
    throw new KtpError('usage', 'give exactly one of --ctm FILE or --ali FILE')
  if (opts.map && !opts.ctm)
    throw new KtpError('usage', '--map applies to CTM labels; Kaldi alignments are ids already')
  if (opts.ctm && !opts.feats)
    throw new KtpError('usage', '--ctm needs --feats FILE: the features decide how many frames each utterance has')
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
  const input: StageInput = opts.feats
    ? await open(opts.feats)
    : { name: file, schema, fingerprint: hashBytes(text), total: ali!.size, stream: () => aliStream(ali!, schema) }

  return {
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
    after: () => {
      if (!made) return
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
    },
  }
}
