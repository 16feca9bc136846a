/**
 * Custom tfjs-layers layer for the recurrent cells tfjs has no stock layer for: LSTM with
 * peepholes and LSTMP (LSTM with a recurrent projection, Sak et al. 2014), uni- or bidirectional.
 *
 * A user loading an exported student imports this module once (it registers the class with
 * `tf.serialization.registerClass`) and then `tf.loadLayersModel(...)` works as for stock layers:
 *
 *   import '<ktp>/stages/nn/export-layers.js'
 *   const model = await tf.loadLayersModel('file://exp/student/model.json')
 *
 * Weights keep ktp's internal layout (gate columns [i, f, o, g]; peephole rows i, f, o) and the
 * call runs the very recurrence the trainer used, so exported outputs equal training outputs.
 * Per direction the weights are: kernel [D, 4H], recurrent_kernel [R, 4H], bias [4H],
 * then peephole [3, H] if `peepholes`, then projection [H, P] if `projection` (R = P or H).
 */
import * as tf from '@tensorflow/tfjs'
import { lstmRecurrence } from './recurrence.js'

export interface KtpLSTMArgs {
  units: number
  /** Recurrent projection size; 0 or absent for none. */
  projection?: number
  peepholes?: boolean
  bidirectional?: boolean
  inputShape?: (number | null)[]
  name?: string
}

type LayerArgs = ConstructorParameters<typeof tf.layers.Layer>[0]

export class KtpLSTM extends tf.layers.Layer {
  static className = 'KtpLSTM'
  readonly units: number
  readonly projection: number
  readonly peepholes: boolean
  readonly bidirectional: boolean
  private cellWeights: tf.LayerVariable[][] = []

  constructor(args: KtpLSTMArgs) {
    super(args as LayerArgs)
    if (!(args.units > 0)) throw new Error(`KtpLSTM: expected units > 0, got ${args.units}`)
    this.units = args.units
    this.projection = args.projection ?? 0
    this.peepholes = args.peepholes ?? false
    this.bidirectional = args.bidirectional ?? false
  }

  private directions(): string[] {
    return this.bidirectional ? ['fw', 'bw'] : ['fw']
  }

  private get outUnits(): number {
    return this.projection > 0 ? this.projection : this.units
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape
    const D = shape[shape.length - 1] as number
    const H = this.units
    const R = this.outUnits
    const glorot = tf.initializers.glorotUniform({})
    this.cellWeights = this.directions().map((d) => {
      const w = [
        this.addWeight(`${d}_kernel`, [D, 4 * H], 'float32', glorot),
        this.addWeight(`${d}_recurrent_kernel`, [R, 4 * H], 'float32', glorot),
        this.addWeight(`${d}_bias`, [4 * H], 'float32', tf.initializers.zeros()),
      ]
      if (this.peepholes) w.push(this.addWeight(`${d}_peephole`, [3, H], 'float32', tf.initializers.zeros()))
      if (this.projection > 0) w.push(this.addWeight(`${d}_projection`, [H, R], 'float32', glorot))
      return w
    })
    this.built = true
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape
    return [s[0], s[1], this.outUnits * this.directions().length]
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs
      const [B, T, D] = x.shape as [number, number, number]
      const xt = tf.reshape(tf.transpose(x, [1, 0, 2]), [T * B, D])
      const outs = this.directions().map((d, k) => {
        const [W, U, b, ...rest] = this.cellWeights[k].map((v) => v.read())
        const peep = this.peepholes ? rest[0] : null
        const Wp = this.projection > 0 ? rest[this.peepholes ? 1 : 0] : null
        const xp = tf.add(tf.matMul(xt, W), b)
        return lstmRecurrence(xp, U, peep, Wp, {
          T,
          B,
          H: this.units,
          reverse: d === 'bw',
          peepholes: this.peepholes,
          projection: this.projection > 0 ? this.projection : undefined,
        })
      })
      const y = outs.length === 1 ? outs[0] : tf.concat(outs, 1)
      return tf.transpose(tf.reshape(y, [T, B, y.shape[1]]), [1, 0, 2])
    })
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      units: this.units,
      projection: this.projection,
      peepholes: this.peepholes,
      bidirectional: this.bidirectional,
    }
  }
}

tf.serialization.registerClass(KtpLSTM)
