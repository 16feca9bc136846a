import { setFlagsFromString } from 'node:v8'

/**
 * The stages a shell pipe streams utterances through. Each keeps little live data (the rows in
 * flight, a model), but allocates per utterance; with V8's default heap growth (its old generation
 * let grow up to ~2-4× what survived the last full collection before collecting again) their
 * peak RSS grew with the input, as garbage piled up between full collections of a long run (FSDD
 * ×16: features 126 → 226 MB while the live heap stayed ~20-40 MB). Not training: its tensors
 * make a large live heap, where tight growth would only mean more full collections.
 */
export const STREAMING_COMMANDS: ReadonlySet<string> = new Set(['features', 'cmvn', 'splice', 'infer'])

/**
 * Grow the old generation by 10% of the live heap past each full collection instead: the heap
 * then tracks the live data. Measured on `ktp features` over FSDD ×4, the committed heap stayed at
 * ~52 MB (default: 100+ MB) for no more CPU (full collections of a small live heap are cheap).
 */
export const STREAMING_V8_FLAGS: readonly string[] = ['--heap-growing-percent=10']

/**
 * `ktp features` also keeps its young generation at the size it has when the command starts: V8
 * doubles it (up to 2 × 16 MB) each time the bytes that survived young collections since its
 * last growth add up to its size, a count that only grows, so a long enough run reaches the
 * maximum however little it keeps. Over FSDD ×16 it so grew mid-run, and the peak with it, to
 * ~145 MB against ~97 MB over FSDD ×1; kept, ~85 against ~74 MB (unthrottled), for no more CPU:
 * the more frequent young collections free each utterance's Buffers sooner. (Not measured for
 * the other streaming stages, so not given to them. Set at run time, as V8 reads it at each
 * growth; given on the command line, node ignored it.)
 */
export const FEATURES_V8_FLAGS: readonly string[] = ['--semi-space-growth-factor=1']

/** The V8 flags a command runs with (set at run time: V8 reads them at every full collection or growth). */
export function v8FlagsFor(command: string | undefined): readonly string[] {
  if (command === undefined || !STREAMING_COMMANDS.has(command)) return []
  return command === 'features' ? [...STREAMING_V8_FLAGS, ...FEATURES_V8_FLAGS] : STREAMING_V8_FLAGS
}

export function tuneHeapFor(command: string | undefined): void {
  for (const f of v8FlagsFor(command)) setFlagsFromString(f)
}
