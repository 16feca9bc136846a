/**
 * How `ktp infer` splits a group of utterances into forward passes of a frame model. A pass's
 * tensors (input, hidden layers, logits and the log-softmax' temporaries) take wasm memory in
 * proportion to its frames, and a WebAssembly.Memory never shrinks: with one pass per group of
 * utterances, the wasm heap grew to the longest group the input happened to hold. A budget of
 * frames per pass bounds it by a constant instead.
 *
 * Passes hold whole utterances, in order, as many as fit the budget; an utterance longer than the
 * budget is cut into pieces of `budget` frames, each in a pass of its own (its last piece may share
 * a pass with the utterances after it). Cutting does not change a value: a frame model maps every
 * frame on its own, and its log-softmax is per frame.
 */

/** Frames `from` … `to` − 1 of utterance `utt` (an index into the group). */
export interface PassPiece {
  utt: number
  from: number
  to: number
}

/** The passes for utterances of `frames[i]` frames each, none over `budget` frames. */
export function framePasses(frames: readonly number[], budget: number): PassPiece[][] {
  if (!(Number.isInteger(budget) && budget > 0))
    throw new Error(`frame budget must be a positive integer, not ${budget}`)
  const passes: PassPiece[][] = []
  let pass: PassPiece[] = []
  let used = 0
  const close = () => {
    if (pass.length > 0) passes.push(pass)
    pass = []
    used = 0
  }
  frames.forEach((n, utt) => {
    if (used + n > budget) close()
    for (let from = 0; from < n; ) {
      const to = Math.min(n, from + budget - used)
      pass.push({ utt, from, to })
      used += to - from
      from = to
      if (used === budget) close()
    }
  })
  close()
  return passes
}
