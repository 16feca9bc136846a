/**
 * A plain LSTM layer (no peepholes, no projection) as one custom op: input projection, recurrence
 * and backprop through time together, with the fused step kernels of lstm-kernels.ts.
 *
 * Why one op instead of `dense` + `lstmRecurrence`: the weight gradients of the input projection
 * (xᵀ·dZ) and of the recurrence (Hₜ₋₁ᵀ·dZ) share their right operand. Stacking the rows
 * [xₜ | hₜ₋₁] (zero state before the first processed step) gives both as one GEMM
 * [x | Hₜ₋₁]ᵀ·dZ, so XNNPACK packs dZ once and the backend sees one call instead of two. The
 * transpose is explicit (flagged matMuls are slow on wasm, ops.ts).
 *
 * Off wasm (cpu in tests, native tfjs-node) this is exactly `dense` + `lstmRecurrence`, the path
 * the fused one is tested against.
 */
import * as tf from '@tensorflow/tfjs'
import { type CellState, fusedLstmAvailable, lstmCellBackward, lstmCellForward } from './lstm-kernels.js'
import { colSum, custom, dense } from './ops.js'
import { type SeqShape, lstmRecurrence, stepOrder } from './recurrence.js'

export interface LstmLayerOptions extends SeqShape {
  /** Whether x needs a gradient (false for the first layer, whose input is data). */
  inputGrad: boolean
}

/**
 * hₜ₋₁ for every row of the time-major outputs Y [T·B, H]: Y shifted by one step against the
 * processing direction, zeros where the state is the initial one.
 */
function previousStates(Y: tf.Tensor, s: SeqShape): tf.Tensor {
  const zeros = tf.zeros([s.B, s.H])
  if (s.T === 1) return zeros
  const n = (s.T - 1) * s.B
  return s.reverse
    ? tf.concat([tf.slice(Y, [s.B, 0], [n, s.H]), zeros], 0)
    : tf.concat([zeros, tf.slice(Y, [0, 0], [n, s.H])], 0)
}

/**
 * Plain LSTM over time-major rows x [T·B, D]: Wx [D, 4H], b [4H], U [H, 4H], gate order
 * [i, f, o, g] (recurrence.ts). Returns hₜ as [T·B, H].
 */
export function lstmLayer(x: tf.Tensor2D, Wx: tf.Tensor2D, b: tf.Tensor1D, U: tf.Tensor2D, o: LstmLayerOptions) {
  if (!fusedLstmAvailable()) {
    const xp = dense(x, Wx, b, 'linear', { inputGrad: o.inputGrad })
    return lstmRecurrence(xp, U, null, null, { ...o, peepholes: false })
  }
  const { B, H } = o
  const D = x.shape[1]
  // Without an input gradient x is closed over, not an op input, so tfjs asks for no dX (ops.ts).
  return custom<tf.Tensor2D>((ins, save) => {
    const [xi, Wxi, bi, Ui] = o.inputGrad ? ins : [x, ...ins]
    const xp = tf.fused.matMul({ a: xi as tf.Tensor2D, b: Wxi as tf.Tensor2D, bias: bi })
    const ts = stepOrder(o)
    const outs: tf.Tensor[] = new Array(o.T)
    const keep: tf.Tensor[] = [] // per processed step: gates, c, tanh(c)
    let prev: CellState | null = null
    for (const t of ts) {
      const hU = prev ? tf.matMul(prev.h, Ui) : null
      const s = lstmCellForward(xp, t * B, B, hU, prev ? prev.c : null)
      keep.push(s.gates, s.c, s.tc)
      outs[t] = s.h
      prev = s
    }
    const Y = tf.concat(outs, 0)
    // Everything the backward reads is saved: tfjs disposes unsaved forward tensors before it runs.
    save([xi, Wxi, Ui, Y, ...keep])
    return {
      value: Y,
      gradFunc: (dy, saved) =>
        tf.tidy(() => {
          const [xs, Wxs, Us, Ys] = saved
          const at = (k: number, j: number) => saved[4 + 3 * k + j]
          const UT = tf.transpose(Us)
          const dzs: tf.Tensor[] = new Array(o.T)
          let dhRec: tf.Tensor | null = null
          let dcNext: tf.Tensor | null = null
          for (let k = o.T - 1; k >= 0; k--) {
            const t = ts[k]
            const cPrev = k > 0 ? at(k - 1, 1) : null
            const { dz, dcf } = lstmCellBackward(dy, t * B, { gates: at(k, 0), tc: at(k, 2) }, dhRec, cPrev, dcNext)
            dzs[t] = dz
            if (k > 0) {
              dhRec = tf.matMul(dz, UT)
              dcNext = dcf
            }
          }
          const dZ = tf.concat(dzs, 0)
          const XH = tf.concat([xs, previousStates(Ys, o)], 1)
          const dW = tf.matMul(tf.transpose(XH), dZ)
          const dWx = tf.slice(dW, [0, 0], [D, 4 * H])
          const dU = tf.slice(dW, [D, 0], [H, 4 * H])
          const db = colSum(dZ as tf.Tensor2D)
          if (!o.inputGrad) return [dWx, db, dU]
          return [tf.matMul(dZ, tf.transpose(Wxs)), dWx, db, dU]
        }),
    }
  })(...(o.inputGrad ? [x, Wx, b, U] : [Wx, b, U]))
}
