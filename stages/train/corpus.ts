import { KtpError } from '../../schemas/errors.js'
import { readMeta } from '../../schemas/metadata.js'
import { getMatrix, getVector, uttId } from '../../schemas/utterance.js'
import { openArrow } from '../../pipeline/io/arrow-source.js'
import { puller } from '../../pipeline/io/pull.js'
import { openArrowBlocks } from '../../pipeline/io/arrow-blocks.js'
import { giveBody } from '../../pipeline/io/body-pool.js'
import { type SoftRow, softRow } from './soft-targets.js'

/**
 * The training corpus as a stream of utterances: features joined with hard labels and/or teacher
 * soft targets by utterance id. Labels are small (one int per frame) and are held in a map; features
 * and soft targets are large and are streamed side by side, so they must come in the same order
 * (soft targets written by `ktp infer` from these features do).
 */
export interface CorpusUtt {
  utt: string
  frames: number
  dim: number
  feats: Float32Array
  labels?: Int32Array
  soft?: SoftRow
}

export interface LabelSet {
  map: Map<string, Int32Array>
  numClasses: number
  /** The file's ktp.num_classes, when it declares one (else numClasses is the largest label + 1). */
  declaredClasses: number | null
  inventory: string[] | null
}

export async function loadLabels(path: string): Promise<LabelSet> {
  const src = await openArrow(path, ['labels'])
  const md = src.schema.metadata
  const numClasses = Number(md.get('ktp.num_classes') ?? NaN)
  const inventory = md.get('ktp.inventory') ? (JSON.parse(md.get('ktp.inventory')!) as string[]) : null
  const map = new Map<string, Int32Array>()
  const next = puller(src.stream())
  let max = -1
  for (let b = await next(); b; b = await next()) {
    const v = getVector<Int32Array>(b, 'labels')
    for (let i = 0; i < v.length; i++) if (v[i] > max) max = v[i]
    map.set(uttId(b), v)
  }
  const declared = Number.isInteger(numClasses) && numClasses > 0 ? numClasses : null
  return { map, numClasses: declared ?? max + 1, declaredClasses: declared, inventory }
}

export interface SoftInfo {
  kind: 'soft-dense' | 'soft-topk'
  numClasses: number
  featureFingerprint: string | null
  teacherFingerprint: string | null
}

export function softInfo(md: Map<string, string>, name: string, kind: string): SoftInfo {
  const numClasses = Number(md.get('ktp.num_classes'))
  if (!Number.isInteger(numClasses) || numClasses <= 0) {
    throw new KtpError('bad-metadata', `${name}: soft-target file lacks a valid ktp.num_classes`)
  }
  return {
    kind: kind as SoftInfo['kind'],
    numClasses,
    featureFingerprint: md.get('ktp.feature_fingerprint') ?? null,
    teacherFingerprint: md.get('ktp.teacher_fingerprint') ?? null,
  }
}

export interface CorpusOptions {
  feats: string
  labels?: LabelSet
  soft?: string
  /** Keep only these utterances (data-size sweeps, held-out splits). */
  select?: (utt: string) => boolean
  /** Require labels for every utterance (skipped with a report otherwise). */
  needLabels?: boolean
  onSkip?: (utt: string, why: string) => void
}

/** Open once to check compatibility (fingerprints, dims) before any training starts. */
export async function describeCorpus(
  opts: Pick<CorpusOptions, 'feats' | 'soft'>,
): Promise<{ dim: number; featureFingerprint: string | null; soft: SoftInfo | null }> {
  const f = await openArrow(opts.feats, ['features'])
  await f.close()
  const dim = getWidth(f.schema.fields.find((x) => x.name === 'feats')!.type)
  const featureFingerprint = readMeta(f.schema).fingerprint
  let soft: SoftInfo | null = null
  if (opts.soft) {
    const s = await openArrow(opts.soft, ['soft-dense', 'soft-topk'])
    await s.close()
    soft = softInfo(s.schema.metadata, s.name, s.spec.kind)
    if (soft.featureFingerprint && featureFingerprint && soft.featureFingerprint !== featureFingerprint) {
      throw new KtpError(
        'fingerprint-mismatch',
        `${s.name} was made from features with fingerprint ${soft.featureFingerprint}, but ${f.name} has fingerprint ${featureFingerprint}; ` +
          'run ktp infer on these features (or train on the features the teacher saw)',
      )
    }
  }
  return { dim, featureFingerprint, soft }
}

function getWidth(t: unknown): number {
  const list = t as { children: { type: { listSize: number } }[] }
  return list.children[0].type.listSize
}

type Batch = import('apache-arrow').RecordBatch

/** An input of the corpus: a file on disk through the synchronous block reader, stdin (`-`) as a stream. */
interface CorpusInput {
  name: string
  schema: import('apache-arrow').Schema
  kind: string
  next: () => Batch | null | Promise<Batch | null>
  close: () => Promise<void>
}

async function openInput(path: string, accept: string[]): Promise<CorpusInput> {
  if (path !== '-') {
    // no promise, file-handle round trip or highland step per utterance (issue 16)
    const b = openArrowBlocks(path, accept)
    return { name: b.name, schema: b.schema, kind: b.spec.kind, next: () => b.next(), close: async () => b.close() }
  }
  const src = await openArrow(path, accept)
  return {
    name: src.name,
    schema: src.schema,
    kind: src.spec.kind,
    next: puller(src.stream()),
    close: () => src.close(),
  }
}

/**
 * The utterances of a corpus as readCorpus streams them. A consumer that is done with an utterance
 * (its arrays read for the last time) may `release` it: the file buffers behind its arrays are then
 * reused for later reads (pipeline/io/body-pool.ts), so the utterance must not be read after, nor
 * released twice. Releasing is optional: a consumer that keeps utterances simply never does.
 */
export interface CorpusStream extends AsyncGenerator<CorpusUtt> {
  release(u: CorpusUtt): void
}

/** The release of a CorpusStream, found on any iterable of utterances that offers one. */
export function releaserOf(utts: AsyncIterable<CorpusUtt>): ((u: CorpusUtt) => void) | null {
  return (utts as Partial<CorpusStream>).release ?? null
}

function releaseUtt(u: CorpusUtt): void {
  // bodies not lent by the pool (stdin, labels, copies of unaligned columns) are ignored by giveBody
  giveBody(u.feats.buffer)
  if (!u.soft) return
  giveBody(u.soft.logp.buffer)
  if (u.soft.ids) giveBody(u.soft.ids.buffer)
  if (u.soft.tail) giveBody(u.soft.tail.buffer)
}

export function readCorpus(opts: CorpusOptions): CorpusStream {
  return Object.assign(streamCorpus(opts), { release: releaseUtt })
}

async function* streamCorpus(opts: CorpusOptions): AsyncGenerator<CorpusUtt> {
  const f = await openInput(opts.feats, ['features'])
  const nextF = f.next
  let nextS: CorpusInput['next'] | null = null
  let sInfo: SoftInfo | null = null
  let sName = ''
  let sSrc: CorpusInput | null = null
  if (opts.soft) {
    try {
      sSrc = await openInput(opts.soft, ['soft-dense', 'soft-topk'])
    } catch (err) {
      await f.close()
      throw err
    }
    sInfo = softInfo(sSrc.schema.metadata, sSrc.name, sSrc.kind)
    sName = sSrc.name
    nextS = sSrc.next
  }
  try {
    for (let b = await nextF(); b; b = await nextF()) {
      const utt = uttId(b)
      const m = getMatrix(b, 'feats')
      let soft: SoftRow | undefined
      if (nextS) {
        const sb = await nextS()
        if (!sb) throw new KtpError('soft-mismatch', `${sName} ends before ${f.name}: no soft targets for '${utt}'`)
        const su = uttId(sb)
        if (su !== utt) {
          throw new KtpError(
            'soft-mismatch',
            `${sName} and ${f.name} are not in the same order: soft targets for '${su}' where '${utt}' was expected`,
          )
        }
        soft = softRow(sb, sInfo!.kind, sInfo!.numClasses)
        if (soft.frames !== m.frames) {
          throw new KtpError(
            'soft-mismatch',
            `'${utt}': ${m.frames} feature frames in ${f.name} but ${soft.frames} soft-target frames in ${sName}`,
          )
        }
      }
      const u: CorpusUtt = { utt, frames: m.frames, dim: m.width, feats: m.data, labels: undefined, soft }
      if (opts.select && !opts.select(utt)) {
        releaseUtt(u) // never seen by the consumer: its buffers serve the next read
        continue
      }
      const labels = opts.labels?.map.get(utt)
      if (opts.needLabels && !labels) {
        opts.onSkip?.(utt, 'no labels')
        releaseUtt(u)
        continue
      }
      if (labels && labels.length !== m.frames) {
        opts.onSkip?.(utt, `${m.frames} feature frames but ${labels.length} labels`)
        releaseUtt(u)
        continue
      }
      u.labels = labels
      yield u
    }
  } finally {
    // a consumer that stops early (or an error) must not leak the files' handles
    await Promise.all([f.close(), sSrc?.close()])
  }
}
