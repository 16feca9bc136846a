import type { RecordBatch } from 'apache-arrow'
import _ from 'highland'
import { KtpError } from '../../schemas/errors.js'
import { readMeta } from '../../schemas/metadata.js'
import { uttId } from '../../schemas/utterance.js'
import type { OpenInput, StagePlan } from '../../pipeline/io/command.js'
import type { StageInput } from '../../pipeline/io/run-stage.js'
import { concatInputs } from '../cat/stage.js'

/**
 * `ktp merge`: join the outputs of `--shard i/N` jobs back into one stream sorted by utterance
 * id (byte order, as Kaldi's `LC_ALL=C sort`), by a k-way merge that holds one utterance per
 * input in memory. Each part must itself be sorted — shards of a sorted input are.
 */
function cmp(a: string, b: string): number {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return Buffer.compare(x, y)
}

export function mergeSorted(inputs: StageInput[]): Highland.Stream<RecordBatch> {
  const heads: (RecordBatch | null | undefined)[] = inputs.map(() => undefined) // undefined = not pulled yet
  const streams = inputs.map((i) => i.stream())
  const last: (string | null)[] = inputs.map(() => null)
  const pullOne = (k: number): Promise<void> =>
    new Promise((resolve, reject) => {
      streams[k].pull((err, x) => {
        if (err) return reject(err)
        if (x === _.nil) heads[k] = null
        else {
          const b = x as RecordBatch
          const u = uttId(b)
          if (last[k] !== null && cmp(last[k]!, u) > 0) {
            return reject(
              new KtpError(
                'unsorted',
                `${inputs[k].name}: '${u}' comes after '${last[k]}'; merge needs parts sorted by utterance id (use ktp cat to concatenate unsorted parts)`,
              ),
            )
          }
          last[k] = u
          heads[k] = b
        }
        resolve()
      })
    })
  return _<RecordBatch>((push, next) => {
    Promise.all(heads.map((h, k) => (h === undefined ? pullOne(k) : Promise.resolve())))
      .then(() => {
        let best = -1
        for (let k = 0; k < heads.length; k++) {
          const h = heads[k]
          if (h && (best < 0 || cmp(uttId(h), uttId(heads[best]!)) < 0)) best = k
        }
        if (best < 0) return push(null, _.nil)
        push(null, heads[best]!)
        heads[best] = undefined
        next()
      })
      .catch((err) => {
        push(err)
        push(null, _.nil)
      })
  })
}

/** The producing stage and options of a part, for messages. */
function producerOf(p: StageInput): string {
  const prod = readMeta(p.schema).producer
  return prod ? `${prod.stage} ${JSON.stringify(prod.options)}` : 'no producer recorded'
}

/**
 * merge joins the shards of ONE run: parts with different fingerprints hold different values (a
 * CMVN'd shard and a raw one), and a merged file would claim one provenance for both.
 */
function refuseMixedParts(parts: StageInput[]): void {
  const first = parts[0]
  const other = parts.find((p) => p.fingerprint !== first?.fingerprint)
  if (!first || !other) return
  throw new KtpError(
    'mixed-parts',
    `${other.name} is not a shard of the same run as ${first.name}: fingerprints ${other.fingerprint} (${producerOf(other)}) and ${first.fingerprint} (${producerOf(first)}); merge joins the --shard parts of one run (ktp cat concatenates different data)`,
  )
}

/** A run of `ktp merge`: the parts as one input, read in utterance order (values and provenance unchanged). */
export async function planMerge(inputs: string[], open: OpenInput): Promise<StagePlan> {
  const parts = await Promise.all(inputs.map((n) => open(n)))
  refuseMixedParts(parts)
  const { input, sameValues } = concatInputs(parts)
  return {
    stage: 'merge',
    options: {},
    preserveMeta: sameValues,
    input: { ...input, stream: () => mergeSorted(parts) },
    schema: input.schema,
    transform: (s) => s,
  }
}
