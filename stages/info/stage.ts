import type { RecordBatch } from 'apache-arrow'
import { z } from 'zod'
import { columnWidth, elemTypeName } from '../../schemas/kinds.js'
import { readMeta } from '../../schemas/metadata.js'
import { numFrames } from '../../schemas/utterance.js'
import { type ArrowSource, openArrow } from '../../pipeline/io/arrow-source.js'
import { drain } from '../../pipeline/io/run-stage.js'

/** `ktp info`: what a ktp Arrow file or stream holds (kind, provenance, counts, dims). */
export const infoOptions = z.object({
  json: z.boolean().default(false).describe('print one JSON object instead of text'),
})
export type InfoOptions = z.infer<typeof infoOptions>

export interface InfoReport {
  source: string
  kind: string
  version: number
  producer: { stage: string; options: Record<string, unknown>; ktp_version?: string } | null
  fingerprint: string | null
  utterances: number
  frames: number
  columns: { name: string; type: string; width: number | null }[]
  metadata: Record<string, string>
}

export async function summarize(src: ArrowSource): Promise<InfoReport> {
  const meta = readMeta(src.schema)
  let utterances = 0
  let frames = 0
  await drain(
    src.stream(),
    (b: RecordBatch) => {
      utterances++
      frames += numFrames(b)
    },
    () => false,
  )
  const metadata: Record<string, string> = {}
  for (const [k, v] of src.schema.metadata) metadata[k] = v
  return {
    source: src.name,
    kind: src.spec.kind,
    version: src.spec.version,
    producer: meta.producer,
    fingerprint: meta.fingerprint,
    utterances,
    frames,
    columns: src.schema.fields.map((f) => {
      const w = columnWidth(src.schema, f.name)
      return { name: f.name, type: String(elemTypeName(f.type)), width: w > 0 ? w : null }
    }),
    metadata,
  }
}

export function formatInfo(r: InfoReport): string {
  const dims = r.columns
    .filter((c) => c.width !== null)
    .map((c) => `${c.name}=${c.width}`)
    .join(' ')
  const lines = [
    `source       ${r.source}`,
    `schema       ${r.kind}@${r.version}`,
    `producer     ${r.producer ? `${r.producer.stage} ${JSON.stringify(r.producer.options)}` : '(none)'}`,
    `fingerprint  ${r.fingerprint ?? '(none)'}`,
    `utterances   ${r.utterances}`,
    `frames       ${r.frames}`,
    `dims         ${dims || '(none)'}`,
    `columns      ${r.columns.map((c) => `${c.name}:${c.type}${c.width ? `[${c.width}]` : ''}`).join(' ')}`,
  ]
  return `${lines.join('\n')}\n`
}

/** `ktp info`: the report of an Arrow file (or - for stdin) on stdout, as text or one JSON line. */
export async function printInfo(o: InfoOptions, input: string): Promise<number> {
  const report = await summarize(await openArrow(input, []))
  process.stdout.write(o.json ? `${JSON.stringify(report)}\n` : formatInfo(report))
  return 0
}
