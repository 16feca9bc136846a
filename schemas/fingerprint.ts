import { createHash } from 'node:crypto'

/**
 * Canonical JSON: object keys sorted at every level, so that the same options always hash the
 * same whatever order a user or a config file gave them in.
 */
export function canonicalJson(value: unknown): string {
  if (value === undefined) return 'null'
  if (value === null || typeof value !== 'object') return JSON.stringify(value)
  if (ArrayBuffer.isView(value)) return canonicalJson(Array.from(value as unknown as ArrayLike<number>))
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const obj = value as Record<string, unknown>
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`
}

/**
 * Fingerprint of a stage output: what was computed (stage + options that change values) from
 * what (the inputs' fingerprints). Options that only select or steer (shard, jobs, progress)
 * must be left out by the caller, so a sharded run and an unsharded one agree once merged.
 */
export function fingerprint(stage: string, options: Record<string, unknown>, inputs: string[]): string {
  const h = createHash('sha256')
  h.update(canonicalJson({ stage, options, inputs }))
  return h.digest('hex').slice(0, 32)
}

export function hashBytes(...parts: (string | Uint8Array)[]): string {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest('hex').slice(0, 32)
}
