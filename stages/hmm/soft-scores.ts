import { type RecordBatch, type Schema, util } from 'apache-arrow'
import { KtpError, UttError } from '../../schemas/errors.js'
import { columnWidth, elemTypeName } from '../../schemas/kinds.js'
import { getMatrix, uttId } from '../../schemas/utterance.js'
import { posteriorsToLoglik, type FrameScores } from './index.js'
import { hybridPriors } from './hybrid.js'
import { checkInventory, type HmmModel } from './model.js'

/**
 * Frame scores for align/decode from a `soft-dense@1` stream (what `ktp infer --top-k 0` writes):
 * per-frame log-posteriors over the HMM's pdfs become scaled log-likelihoods,
 * acousticScale · (log p(pdf|x) − log p(pdf)), the hybrid-model recipe.
 */
export interface ScoreOptions {
  acousticScale: number
  /** divide by the model's priors; without priors in the model the posteriors are used as they are */
  usePriors: boolean
}

export interface ScoresReader {
  /** f16 input is widened once per utterance; f32 is read in place */
  readonly f16: boolean
  readonly priors: Float64Array
  /** true when the model has no priors (or --no-use-priors): callers say so once on stderr */
  readonly flatPriors: boolean
}

/** Check a soft-dense stream against the model: one column per pdf (and the same names, if given), or a fatal error. */
export function scoresReader(schema: Schema, source: string, model: HmmModel, opts: ScoreOptions): ScoresReader {
  const width = columnWidth(schema, 'logp')
  if (width !== model.units.numPdfs) {
    throw new KtpError(
      'wrong-width',
      `${source}: logp has ${width} classes per frame but the HMM has ${model.units.numPdfs} pdfs; the network must be trained on this HMM's labels`,
    )
  }
  checkInventory(schema, source, model)
  const field = schema.fields.find((f) => f.name === 'logp')!
  const { priors, flat } = hybridPriors(model, opts.usePriors)
  return { f16: elemTypeName(field.type) === 'f16', priors, flatPriors: flat }
}

export function frameScoresOf(batch: RecordBatch, reader: ScoresReader, opts: ScoreOptions): FrameScores {
  const m = getMatrix(batch, 'logp')
  const data = reader.f16
    ? Float32Array.from(m.data as unknown as Uint16Array, util.uint16ToFloat64)
    : (m.data as Float32Array)
  for (let i = 0; i < data.length; i++) {
    // a NaN would silently lose every comparison in the search and yield a garbage path
    if (Number.isNaN(data[i]!)) {
      throw new UttError(
        'bad-scores',
        uttId(batch),
        `logp is NaN at frame ${Math.floor(i / m.width)}, class ${i % m.width}`,
      )
    }
  }
  return posteriorsToLoglik({ numFrames: m.frames, numPdfs: m.width, data }, reader.priors, {
    acousticScale: opts.acousticScale,
    inputIsLog: true,
  })
}
