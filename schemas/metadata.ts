import { Schema } from 'apache-arrow'
import { KtpError } from './errors.js'

/**
 * Custom metadata every ktp Arrow stream/file carries (docs/ARCHITECTURE.md §2). Kept as plain strings in the
 * Arrow schema so that pyarrow, DuckDB or arrow-rs users can read them without ktp.
 */
export const META = {
  schema: 'ktp.schema', // "<kind>@<version>", e.g. "features@1"
  producer: 'ktp.producer', // JSON {stage, options, ktp_version}
  fingerprint: 'ktp.fingerprint', // hex hash of producer options + input fingerprints
} as const

export interface KindVersion {
  kind: string
  version: number
}

export function parseKindVersion(s: string, source: string): KindVersion {
  const m = /^([a-z][a-z0-9-]*)@(\d+)$/.exec(s)
  if (!m) throw new KtpError('bad-metadata', `${source}: ktp.schema is '${s}', expected '<kind>@<version>'`)
  return { kind: m[1], version: Number(m[2]) }
}

export function formatKindVersion(k: KindVersion): string {
  return `${k.kind}@${k.version}`
}

export interface Producer {
  stage: string
  options: Record<string, unknown>
  ktp_version?: string
}

/** Read ktp metadata from a schema; `null` fields when absent (a foreign Arrow file). */
export function readMeta(schema: Schema): {
  kind: KindVersion | null
  producer: Producer | null
  fingerprint: string | null
  extra: Map<string, string>
} {
  const md = schema.metadata
  const kindS = md.get(META.schema)
  const prodS = md.get(META.producer)
  let producer: Producer | null = null
  if (prodS) {
    try {
      producer = JSON.parse(prodS) as Producer
    } catch {
      producer = { stage: prodS, options: {} }
    }
  }
  return {
    kind: kindS ? parseKindVersion(kindS, 'schema metadata') : null,
    producer,
    fingerprint: md.get(META.fingerprint) ?? null,
    extra: md,
  }
}

/** A copy of `schema` whose metadata has `entries` set (others kept). */
export function withMeta(schema: Schema, entries: Record<string, string>): Schema {
  const md = new Map(schema.metadata)
  for (const [k, v] of Object.entries(entries)) md.set(k, v)
  return new Schema(schema.fields, md)
}
