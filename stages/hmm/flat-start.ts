/**
 * Flat start: before any acoustic model exists, frame labels come from splitting each known
 * span evenly over the states of what was said in it (frame i of n goes to state ⌊i·K/n⌋, so
 * state durations differ by at most one frame). Frames outside every span (the silences between
 * concatenated FSDD digits) get `fillPdf`.
 */
export class FlatStartError extends Error {
  override name = 'FlatStartError'
}

/** State index (0..K-1) for each of n frames. */
export function uniformSegmentation(numFrames: number, numStates: number): Int32Array {
  if (numStates < 1) throw new FlatStartError(`expected numStates >= 1, got ${numStates}`)
  if (numFrames < numStates)
    throw new FlatStartError(`span of ${numFrames} frames is too short for ${numStates} states`)
  const out = new Int32Array(numFrames)
  for (let i = 0; i < numFrames; i++) out[i] = Math.floor((i * numStates) / numFrames)
  return out
}

export interface LabelledSpan {
  /** first frame */
  readonly start: number
  /** end frame, exclusive */
  readonly end: number
  /** the pdf sequence of the word(s) in the span, e.g. from wordPdfs() */
  readonly pdfs: Int32Array
}

/** Frame labels (pdf per frame) for an utterance of `numFrames` frames. */
export function flatStartLabels(numFrames: number, spans: readonly LabelledSpan[], fillPdf: number): Int32Array {
  const out = new Int32Array(numFrames).fill(fillPdf)
  for (const sp of spans) {
    if (!(sp.start >= 0 && sp.end <= numFrames && sp.start < sp.end)) {
      throw new FlatStartError(`span [${sp.start}, ${sp.end}) is outside the utterance of ${numFrames} frames`)
    }
    const seg = uniformSegmentation(sp.end - sp.start, sp.pdfs.length)
    for (let i = 0; i < seg.length; i++) out[sp.start + i] = sp.pdfs[seg[i]!]!
  }
  return out
}
