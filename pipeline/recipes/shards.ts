import { join } from 'node:path'
import { KtpError } from '../../schemas/errors.js'
import type { Step } from './plan.js'

/**
 * A shardable step (features, infer) split into N commands, each the step's own command with
 * `--shard i/N` and its output redirected to a part file, then joined by `ktp merge` into the
 * step's output: the same utterances in the same (sorted) order as the unsharded command writes.
 * The parts live in a hidden folder of the output directory, so no directory input hashes them.
 */

export function shardDir(out: string, s: Step): string {
  return join(out, '.ktp-shards', s.name)
}

export function partPath(out: string, s: Step, index: number, count: number): string {
  return join(shardDir(out, s), `part-${index}-of-${count}.arrow`)
}

function outputArg(s: Step): number {
  const i = s.cmd?.indexOf('-o') ?? -1
  if (!s.shardable || !s.cmd || i < 0 || s.outputs.length !== 1 || s.cmd[i + 1] !== s.outputs[0])
    throw new KtpError('usage', `step '${s.name}' cannot be sharded (it needs one output given by -o)`)
  return i
}

/** Part `index` of `count`: the step's command on its shard of the utterances, into a part file. */
export function shardPart(out: string, s: Step, index: number, count: number): Step {
  if (!Number.isInteger(index) || index < 1 || index > count)
    throw new KtpError('usage', `--shard-task ${index}/${count}: expected i/N with 1 ≤ i ≤ N`)
  const cmd = [...s.cmd!]
  cmd[outputArg(s) + 1] = partPath(out, s, index, count)
  return { ...s, name: `${s.name}.shard-${index}`, cmd: [...cmd, '--shard', `${index}/${count}`] }
}

/** The merge of the `count` parts into the step's output. */
export function mergeParts(out: string, s: Step, count: number): Step {
  outputArg(s)
  const parts = Array.from({ length: count }, (_, i) => partPath(out, s, i + 1, count))
  return { ...s, name: `${s.name}.merge`, cmd: ['merge', ...parts, '-o', s.outputs[0], '--quiet'] }
}
