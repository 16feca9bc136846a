/**
 * Recurrences with hand-written backprop through time.
 *
 * Each function takes the layer's input projections for the whole chunk, xp = x·Wx + b, already
 * computed in one GEMM ([T·B, D]·[D, G·H]) by `dense`, time-major: rows t·B … t·B+B−1 are step t.
 * The custom op runs the recurrence and, on the way back, returns dxp (which `dense` turns into
 * dWx, db and dx with big GEMMs) and the recurrent weight gradients. The per-step backward GEMM
 * dh·Uᵀ uses a transpose materialised once per chunk; the recurrent weight gradient is one big
 * GEMM over all steps (Hₜ₋₁ stacked)ᵀ·(dz stacked) instead of T small ones. So no transposed
 * matMul ever reaches the backend.
 *
 * `reverse` runs the recurrence from the last frame to the first (the backward half of a
 * bidirectional layer) while keeping outputs at their own time index, as tfjs' Bidirectional does.
 * The initial state is zero (chunks are independent training sequences).
 */
import * as tf from '@tensorflow/tfjs'
import { custom } from './ops.js'

export interface SeqShape {
  /** Frames per chunk. */
  T: number
  /** Chunks (sequences) in the batch. */
  B: number
  /** Cells. */
  H: number
  /** Process t = T−1 … 0. */
  reverse: boolean
}

/** Time indices in processing order. */
export function stepOrder(s: SeqShape): number[] {
  const ts = Array.from({ length: s.T }, (_, i) => i)
  return s.reverse ? ts.reverse() : ts
}

/** Rows of step t from a time-major [T·B, K] matrix. */
function step(m: tf.Tensor, t: number, B: number): tf.Tensor {
  return tf.slice(m, [t * B, 0], [B, m.shape[1]!]) as tf.Tensor
}

/** Columns [from, from+n) of a [B, K] matrix. */
function cols(m: tf.Tensor, from: number, n: number): tf.Tensor {
  return tf.slice(m, [0, from], [m.shape[0] as number, n]) as tf.Tensor
}

/**
 * Rows of every step except the first processed one, and the rows of the step before each of
 * them in processing order: (Hₜ₋₁ stacked, dzₜ stacked) pairs for the recurrent weight gradient.
 * Time-major outputs make both contiguous row ranges.
 */
function shiftedPairs(Y: tf.Tensor, dZ: tf.Tensor, s: SeqShape): [tf.Tensor, tf.Tensor] {
  const n = (s.T - 1) * s.B
  const yCols = Y.shape[1]!
  const zCols = dZ.shape[1]!
  if (!s.reverse) {
    return [tf.slice(Y, [0, 0], [n, yCols]), tf.slice(dZ, [s.B, 0], [n, zCols])]
  }
  return [tf.slice(Y, [s.B, 0], [n, yCols]), tf.slice(dZ, [0, 0], [n, zCols])]
}

/** Yᵀ·dZ over the shifted pairs: the recurrent weight gradient; zero when T = 1. */
function recurrentGrad(Y: tf.Tensor, dZ: tf.Tensor, s: SeqShape): tf.Tensor {
  if (s.T === 1) return tf.zeros([Y.shape[1]!, dZ.shape[1]!])
  const [hp, dz] = shiftedPairs(Y, dZ, s)
  return tf.matMul(tf.transpose(hp), dz)
}

/** Peephole vectors from peep [3, H]: [pi | pf] as one [2H] row (it multiplies [c | c] in one op), and po. */
function peepVectors(peep: tf.Tensor, H: number): [tf.Tensor, tf.Tensor] {
  return [tf.reshape(tf.slice(peep, [0, 0], [2, H]), [2 * H]), tf.reshape(tf.slice(peep, [2, 0], [1, H]), [H])]
}

export interface LstmOptions extends SeqShape {
  /** Peephole connections from the cell to the i, f (previous cell) and o (current cell) gates. */
  peepholes: boolean
  /** Size of the recurrent projection (LSTMP, Sak et al. 2014); absent for a plain LSTM. */
  projection?: number
}

/**
 * LSTM / LSTMP recurrence. Internal gate order [i, f, o, g] so the three sigmoid gates are one
 * contiguous block (one slice + one sigmoid per step); export reorders to tfjs' [i, f, c, o].
 *   xp [T·B, 4H] (x·Wx + b), U [R, 4H] (R = projection or H), peep [3, H] (rows i, f, o),
 *   Wp [H, P]. Returns the outputs rₜ (= mₜ·Wp with a projection, else hₜ = mₜ) as [T·B, R].
 *   cₜ = f⊙cₜ₋₁ + i⊙g, mₜ = o⊙tanh(cₜ), zₜ = xpₜ + rₜ₋₁·U.
 */
export function lstmRecurrence(
  xp: tf.Tensor,
  U: tf.Tensor,
  peep: tf.Tensor | null,
  Wp: tf.Tensor | null,
  o: LstmOptions,
): tf.Tensor2D {
  const { B, H } = o
  const inputs = [xp, U, ...(peep ? [peep] : []), ...(Wp ? [Wp] : [])]
  return custom<tf.Tensor2D>((ins, save) => {
    const [xpi, Ui] = ins as tf.Tensor[]
    const peepi = peep ? (ins[2] as tf.Tensor) : null
    const Wpi = Wp ? (ins[peep ? 3 : 2] as tf.Tensor) : null
    const [pif, po] = peepi ? peepVectors(peepi, H) : [null, null]
    const ts = stepOrder(o)
    const outs: tf.Tensor[] = new Array(o.T)
    const keep: tf.Tensor[] = [] // per processed step: i, f, o, g, tanh(c), c, [i|f|o], [m]
    let h: tf.Tensor | null = null
    let c: tf.Tensor | null = null
    for (const t of ts) {
      const xt = step(xpi, t, B)
      const z: tf.Tensor = h == null ? xt : tf.add(xt, tf.matMul(h, Ui))
      let ig: tf.Tensor, fg: tf.Tensor, og: tf.Tensor, cNew: tf.Tensor, gates: tf.Tensor
      const g = tf.tanh(cols(z, 3 * H, H))
      if (pif && po) {
        let zif = cols(z, 0, 2 * H)
        if (c != null) zif = tf.add(zif, tf.mul(tf.concat([c, c], 1), pif))
        const sif = tf.sigmoid(zif)
        ig = cols(sif, 0, H)
        fg = cols(sif, H, H)
        cNew = c == null ? tf.mul(ig, g) : tf.add(tf.mul(fg, c), tf.mul(ig, g))
        og = tf.sigmoid(tf.add(cols(z, 2 * H, H), tf.mul(cNew, po)))
        gates = tf.concat([sif, og], 1)
      } else {
        const sifo = tf.sigmoid(cols(z, 0, 3 * H))
        gates = sifo
        ig = cols(sifo, 0, H)
        fg = cols(sifo, H, H)
        og = cols(sifo, 2 * H, H)
        cNew = c == null ? tf.mul(ig, g) : tf.add(tf.mul(fg, c), tf.mul(ig, g))
      }
      const tc = tf.tanh(cNew)
      const m = tf.mul(og, tc)
      const r = Wpi ? tf.matMul(m, Wpi) : m
      keep.push(ig, fg, og, g, tc, cNew, gates, ...(Wpi ? [m] : []))
      outs[t] = r
      h = r
      c = cNew
    }
    const Y = tf.concat(outs, 0)
    // Weights are saved (not read from the closure) so the op is safe whatever scope made them.
    save([Y, Ui, ...(peepi ? [peepi] : []), ...(Wpi ? [Wpi] : []), ...keep])
    const per = Wpi ? 8 : 7
    const base = 2 + (peepi ? 1 : 0) + (Wpi ? 1 : 0)
    return {
      value: Y,
      gradFunc: (dy, saved) =>
        tf.tidy(() => {
          const Ys = saved[0]
          const Us = saved[1]
          const peeps = peepi ? saved[2] : null
          const Wps = Wpi ? saved[peepi ? 3 : 2] : null
          const at = (k: number, j: number) => saved[base + k * per + j]
          // Forward intermediates are gone (tfjs tidies the forward); rebuild what is needed from inputs.
          const [pif, po] = peeps ? peepVectors(peeps, H) : [null, null]
          const UT = tf.transpose(Us)
          const WpT = Wps ? tf.transpose(Wps) : null
          const dzs: tf.Tensor[] = new Array(o.T)
          const dhs: tf.Tensor[] = new Array(o.T)
          const dpTerms: [tf.Tensor[], tf.Tensor[], tf.Tensor[]] = [[], [], []]
          let dhRec: tf.Tensor | null = null
          let dcNext: tf.Tensor | null = null
          const one = tf.scalar(1)
          for (let k = o.T - 1; k >= 0; k--) {
            const t = ts[k]
            const [ig, fg, og, g, tc, , gates] = [0, 1, 2, 3, 4, 5, 6].map((j) => at(k, j))
            const cPrev = k > 0 ? at(k - 1, 5) : null
            let dh = step(dy, t, B)
            if (dhRec) dh = tf.add(dh, dhRec)
            dhs[t] = dh
            const dm = WpT ? tf.matMul(dh, WpT) : dh
            // Gate-output gradients first; the sigmoid derivative is then applied to the whole
            // [i|f|o] block in two ops instead of three per gate (op count is what a step costs).
            const dO = tf.mul(dm, tc)
            let dc = tf.mul(tf.mul(dm, og), tf.sub(one, tf.square(tc)))
            if (dcNext) dc = tf.add(dc, dcNext)
            if (po) {
              // o sees the current cell through its peephole: dc += po ⊙ dzo
              const dzo = tf.mul(dO, tf.mul(og, tf.sub(one, og)))
              dc = tf.add(dc, tf.mul(dzo, po))
              dpTerms[2].push(tf.mul(dzo, at(k, 5)))
            }
            const dF = cPrev ? tf.mul(dc, cPrev) : tf.zerosLike(dc)
            const dS = tf.mul(tf.concat([tf.mul(dc, g), dF, dO], 1), tf.mul(gates, tf.sub(one, gates)))
            const dzg = tf.mul(tf.mul(dc, ig), tf.sub(one, tf.square(g)))
            dzs[t] = tf.concat([dS, dzg], 1)
            if (k > 0) {
              dhRec = tf.matMul(dzs[t], UT)
              dcNext = tf.mul(dc, fg)
              if (pif && cPrev) {
                // i and f see the previous cell through their peepholes
                const dzif = cols(dS, 0, 2 * H)
                const both = tf.mul(dzif, pif)
                dcNext = tf.add(dcNext, tf.add(cols(both, 0, H), cols(both, H, H)))
                dpTerms[0].push(tf.mul(cols(dS, 0, H), cPrev))
                dpTerms[1].push(tf.mul(cols(dS, H, H), cPrev))
              }
            }
          }
          const dXp = tf.concat(dzs, 0)
          const grads: tf.Tensor[] = [dXp, recurrentGrad(Ys, dXp, o)]
          if (peeps) {
            const row = (terms: tf.Tensor[]) =>
              terms.length === 0 ? tf.zeros([1, H]) : tf.sum(terms.length === 1 ? terms[0] : tf.addN(terms), 0, true)
            grads.push(tf.concat([row(dpTerms[0]), row(dpTerms[1]), row(dpTerms[2])], 0))
          }
          if (Wps) {
            const M = tf.concat(timeOrdered(saved.slice(base), ts, 7, per), 0)
            grads.push(tf.matMul(tf.transpose(M), tf.concat(dhs, 0)))
          }
          return grads
        }),
    }
  })(...inputs)
}

/**
 * GRU recurrence with tfjs-layers' GRUCell semantics (gate order z, r, h; reset applied to the
 * state before the recurrent product, one bias), so export to tf.layers.gru is exact:
 *   z, r = σ(xp_zr + hₜ₋₁·U_zr),  h̃ = tanh(xp_h + (r⊙hₜ₋₁)·U_h),  hₜ = z⊙hₜ₋₁ + (1−z)⊙h̃.
 * xp [T·B, 3H], U [H, 3H]; returns hₜ as [T·B, H].
 */
export function gruRecurrence(xp: tf.Tensor, U: tf.Tensor, o: SeqShape): tf.Tensor2D {
  const { B, H } = o
  return custom<tf.Tensor2D>(([xpi, Ui], save) => {
    const Uzr = tf.slice(Ui, [0, 0], [H, 2 * H])
    const Uh = tf.slice(Ui, [0, 2 * H], [H, H])
    const ts = stepOrder(o)
    const outs: tf.Tensor[] = new Array(o.T)
    const keep: tf.Tensor[] = [] // per processed step: zr, z, r, h̃, r⊙hₜ₋₁ (zeros at the first step), hₜ
    let h: tf.Tensor | null = null
    for (const t of ts) {
      const xt = step(xpi, t, B)
      const azr = cols(xt, 0, 2 * H)
      const zr = tf.sigmoid(h == null ? azr : tf.add(azr, tf.matMul(h, Uzr)))
      const z = cols(zr, 0, H)
      const r = cols(zr, H, H)
      const rh = h == null ? tf.zerosLike(r) : tf.mul(r, h)
      const ah = cols(xt, 2 * H, H)
      const hh = tf.tanh(h == null ? ah : tf.add(ah, tf.matMul(rh, Uh)))
      // hₜ = h̃ + z⊙(hₜ₋₁ − h̃)
      const hNew: tf.Tensor = h == null ? tf.sub(hh, tf.mul(z, hh)) : tf.add(hh, tf.mul(z, tf.sub(h, hh)))
      keep.push(zr, z, r, hh, rh, hNew)
      outs[t] = hNew
      h = hNew
    }
    save([Ui, ...keep])
    return {
      value: tf.concat(outs, 0),
      gradFunc: (dy, saved) =>
        tf.tidy(() => {
          const Us = saved[0]
          const at = (k: number, j: number) => saved[1 + k * 6 + j]
          // Forward intermediates are gone (tfjs tidies the forward); transpose the input's column blocks.
          const UzrT = tf.transpose(tf.slice(Us, [0, 0], [H, 2 * H]))
          const UhT = tf.transpose(tf.slice(Us, [0, 2 * H], [H, H]))
          const dazrs: tf.Tensor[] = new Array(o.T)
          const dahs: tf.Tensor[] = new Array(o.T)
          let dhRec: tf.Tensor | null = null
          for (let k = o.T - 1; k >= 0; k--) {
            const t = ts[k]
            const [zr, z, r, hh] = [at(k, 0), at(k, 1), at(k, 2), at(k, 3)]
            const hp = k > 0 ? at(k - 1, 5) : null
            let dh = step(dy, t, B)
            if (dhRec) dh = tf.add(dh, dhRec)
            const dz = tf.mul(dh, hp ? tf.sub(hp, hh) : tf.neg(hh))
            const dah = tf.mul(tf.mul(dh, tf.sub(1, z)), tf.sub(1, tf.square(hh)))
            let dr: tf.Tensor
            let dhp: tf.Tensor | null = null
            if (hp) {
              const drh = tf.matMul(dah, UhT)
              dr = tf.mul(drh, hp)
              dhp = tf.add(tf.mul(dh, z), tf.mul(drh, r))
            } else {
              dr = tf.zerosLike(dz)
            }
            const dazr = tf.mul(tf.concat([dz, dr], 1), tf.mul(zr, tf.sub(1, zr)))
            dazrs[t] = dazr
            dahs[t] = dah
            if (dhp) dhRec = tf.add(dhp, tf.matMul(dazr, UzrT))
          }
          const dAzr = tf.concat(dazrs, 0)
          const dAh = tf.concat(dahs, 0)
          const dXp = tf.concat([dAzr, dAh], 1)
          // hₜ₋₁ stacked for U_zr; (r⊙hₜ₋₁) stacked for U_h (zero rows at the first step add nothing).
          const Yt = tf.concat(timeOrdered(saved.slice(1), ts, 5, 6), 0)
          const RH = tf.concat(timeOrdered(saved.slice(1), ts, 4, 6), 0)
          const dUzr = recurrentGrad(Yt, dAzr, o)
          const dUh = tf.matMul(tf.transpose(RH), dAh)
          return [dXp, tf.concat([dUzr, dUh], 1)]
        }),
    }
  })(xp, U)
}

/** Saved per-step tensors (field j of `per`) rearranged into time order. */
function timeOrdered(saved: tf.Tensor[], ts: number[], j: number, per: number): tf.Tensor[] {
  const out: tf.Tensor[] = new Array(ts.length)
  ts.forEach((t, k) => {
    out[t] = saved[k * per + j]
  })
  return out
}

/**
 * Vanilla (Elman) RNN recurrence, tanh: hₜ = tanh(xpₜ + hₜ₋₁·U); xp [T·B, H], U [H, H].
 */
export function rnnRecurrence(xp: tf.Tensor, U: tf.Tensor, o: SeqShape): tf.Tensor2D {
  const { B } = o
  return custom<tf.Tensor2D>(([xpi, Ui], save) => {
    const ts = stepOrder(o)
    const outs: tf.Tensor[] = new Array(o.T)
    let h: tf.Tensor | null = null
    for (const t of ts) {
      const xt = step(xpi, t, B)
      h = tf.tanh(h == null ? xt : tf.add(xt, tf.matMul(h, Ui)))
      outs[t] = h
    }
    const Y = tf.concat(outs, 0)
    save([Y, Ui])
    return {
      value: Y,
      gradFunc: (dy, [Ys, Us]) =>
        tf.tidy(() => {
          const UT = tf.transpose(Us)
          const das: tf.Tensor[] = new Array(o.T)
          let dhRec: tf.Tensor | null = null
          for (let k = o.T - 1; k >= 0; k--) {
            const t = ts[k]
            let dh = step(dy, t, B)
            if (dhRec) dh = tf.add(dh, dhRec)
            const ht = step(Ys, t, B)
            das[t] = tf.mul(dh, tf.sub(1, tf.square(ht)))
            if (k > 0) dhRec = tf.matMul(das[t], UT)
          }
          const dA = tf.concat(das, 0)
          return [dA, recurrentGrad(Ys as tf.Tensor, dA, o)]
        }),
    }
  })(xp, U)
}
