import {
  DataType,
  Field,
  Schema,
  Utf8,
  Float32,
  Float16,
  Float64,
  Int32,
  Uint16,
  Uint32,
  List,
  FixedSizeList,
} from 'apache-arrow'
import { KtpError } from './errors.js'
import { META, formatKindVersion, readMeta } from './metadata.js'

/**
 * The data contract between stages (docs/ARCHITECTURE.md §2). Every stream is keyed by utterance: one row
 * per utterance, column `utt` first. Per-frame data are `List<FixedSizeList<T>[width]>` (a matrix
 * per utterance, frames contiguous so a consumer gets one typed-array view with no copying) or
 * `List<T>` (one value per frame). Versions bump when a column changes meaning.
 */
export type ElemType = 'f32' | 'f16' | 'f64' | 'i32' | 'u16' | 'u32' | 'utf8'

export interface ColumnSpec {
  name: string
  /** `matrix`: frames × width; `vector`: one value per frame; `scalar`: one value per utterance. */
  shape: 'matrix' | 'vector' | 'scalar'
  /** Element types accepted (the first is what ktp writes by default). */
  types: ElemType[]
  nullable?: boolean
  doc: string
}

export interface KindSpec {
  kind: string
  version: number
  columns: ColumnSpec[]
  doc: string
}

export const KINDS: Record<string, KindSpec> = {
  manifest: {
    kind: 'manifest',
    version: 1,
    doc: 'One row per utterance of a corpus: where its audio is and what was said.',
    columns: [
      { name: 'utt', shape: 'scalar', types: ['utf8'], doc: 'utterance id (unique, no spaces)' },
      { name: 'speaker', shape: 'scalar', types: ['utf8'], doc: 'speaker id' },
      { name: 'audio', shape: 'scalar', types: ['utf8'], doc: 'path, or a command ending in | (Kaldi wav.scp)' },
      {
        name: 'channel',
        shape: 'scalar',
        types: ['i32'],
        nullable: true,
        doc: 'channel to take (0-based); null = mono',
      },
      {
        name: 'start',
        shape: 'scalar',
        types: ['f64'],
        nullable: true,
        doc: 'segment start in seconds (Kaldi segments)',
      },
      {
        name: 'end',
        shape: 'scalar',
        types: ['f64'],
        nullable: true,
        doc: 'segment end in seconds; null = to the end',
      },
      { name: 'text', shape: 'scalar', types: ['utf8'], nullable: true, doc: 'transcript' },
    ],
  },
  features: {
    kind: 'features',
    version: 1,
    doc: 'A feature matrix per utterance (frames × dim).',
    columns: [
      { name: 'utt', shape: 'scalar', types: ['utf8'], doc: 'utterance id' },
      { name: 'feats', shape: 'matrix', types: ['f32'], doc: 'frames × dim, float32' },
    ],
  },
  labels: {
    kind: 'labels',
    version: 1,
    doc: 'A hard target (class id) per frame.',
    columns: [
      { name: 'utt', shape: 'scalar', types: ['utf8'], doc: 'utterance id' },
      { name: 'labels', shape: 'vector', types: ['i32'], doc: 'class id per frame, 0 ≤ id < ktp.num_classes' },
    ],
  },
  'soft-dense': {
    kind: 'soft-dense',
    version: 1,
    doc: 'Teacher log-probabilities at T = 1 for every class. softmax(logp / T) gives the targets at any T.',
    columns: [
      { name: 'utt', shape: 'scalar', types: ['utf8'], doc: 'utterance id' },
      { name: 'logp', shape: 'matrix', types: ['f32', 'f16'], doc: 'frames × num_classes log-probabilities' },
    ],
  },
  'soft-topk': {
    kind: 'soft-topk',
    version: 1,
    doc: "The teacher's k most probable classes per frame with their log-probabilities at T = 1, and the tail mass.",
    columns: [
      { name: 'utt', shape: 'scalar', types: ['utf8'], doc: 'utterance id' },
      { name: 'ids', shape: 'matrix', types: ['u16', 'u32'], doc: 'frames × k class ids, most probable first' },
      { name: 'logp', shape: 'matrix', types: ['f16', 'f32'], doc: 'frames × k log-probabilities at T = 1' },
      { name: 'tail', shape: 'vector', types: ['f32'], doc: 'probability mass (T = 1) of the classes not listed' },
    ],
  },
}

export function elemArrowType(t: ElemType): DataType {
  switch (t) {
    case 'f32':
      return new Float32()
    case 'f16':
      return new Float16()
    case 'f64':
      return new Float64()
    case 'i32':
      return new Int32()
    case 'u16':
      return new Uint16()
    case 'u32':
      return new Uint32()
    case 'utf8':
      return new Utf8()
  }
}

function columnType(c: ColumnSpec, elem: ElemType, width?: number): DataType {
  const e = elemArrowType(elem)
  if (c.shape === 'scalar') return e
  if (c.shape === 'vector') return new List(new Field('item', e, false))
  if (!width || width <= 0) throw new KtpError('bad-width', `column '${c.name}' needs a positive width, got ${width}`)
  return new List(new Field('item', new FixedSizeList(width, new Field('item', e, false)), false))
}

export interface SchemaOptions {
  /** Width of each matrix column (e.g. {feats: 40}). */
  widths?: Record<string, number>
  /** Element type per column where a kind accepts several (e.g. {logp: 'f16'}). */
  types?: Record<string, ElemType>
  /** Extra metadata (ktp.producer, ktp.fingerprint, kind-specific keys). */
  metadata?: Record<string, string>
}

/** Build the Arrow schema of a kind, with its `ktp.schema` metadata. */
export function makeSchema(kindName: string, opts: SchemaOptions = {}): Schema {
  const spec = KINDS[kindName]
  if (!spec) throw new KtpError('unknown-kind', `unknown schema kind '${kindName}'`)
  const fields = spec.columns.map((c) => {
    const elem = opts.types?.[c.name] ?? c.types[0]
    if (!c.types.includes(elem)) {
      throw new KtpError('bad-type', `column '${c.name}' of ${kindName} takes ${c.types.join('|')}, got ${elem}`)
    }
    return new Field(c.name, columnType(c, elem, opts.widths?.[c.name]), c.nullable ?? false)
  })
  const md = new Map<string, string>([[META.schema, formatKindVersion(spec)]])
  for (const [k, v] of Object.entries(opts.metadata ?? {})) md.set(k, v)
  return new Schema(fields, md)
}

/** Width of a matrix column in a schema (0 for vector/scalar columns). */
export function columnWidth(schema: Schema, name: string): number {
  const f = schema.fields.find((x) => x.name === name)
  if (!f) throw new KtpError('no-column', `no column '${name}' in schema`)
  const t = f.type
  if (t instanceof List && t.children[0].type instanceof FixedSizeList) return t.children[0].type.listSize
  return 0
}

function elemOf(t: DataType): DataType {
  if (t instanceof List) return elemOf(t.children[0].type)
  if (t instanceof FixedSizeList) return t.children[0].type
  return t
}

function shapeOf(t: DataType): ColumnSpec['shape'] {
  if (t instanceof List) return t.children[0].type instanceof FixedSizeList ? 'matrix' : 'vector'
  return 'scalar'
}

/**
 * Name an element type by its Arrow type id and width, not by JS class: types read back from IPC
 * are generic (`Float` with a precision, `Int` with a bit width), not `Float16`/`Uint16` instances.
 */
export function elemTypeName(t: DataType): ElemType | string {
  const e = elemOf(t)
  if (DataType.isFloat(e)) return (['f16', 'f32', 'f64'] as const)[(e as unknown as { precision: number }).precision]
  if (DataType.isInt(e)) {
    const { bitWidth, isSigned } = e as unknown as { bitWidth: number; isSigned: boolean }
    if (bitWidth === 32 && isSigned) return 'i32'
    if (bitWidth === 16 && !isSigned) return 'u16'
    if (bitWidth === 32 && !isSigned) return 'u32'
  }
  if (DataType.isUtf8(e)) return 'utf8'
  return String(e)
}

/**
 * Check that a stream's schema is one of the kinds a consumer accepts, at a version it knows,
 * with the columns that kind promises. `source` names the file (or "stdin") for the message.
 */
export function validateSchema(schema: Schema, accept: string[], source: string): KindSpec {
  const meta = readMeta(schema)
  if (!meta.kind) {
    throw new KtpError(
      'not-ktp',
      `${source}: no ktp.schema metadata; expected one of ${accept.join(', ')} (is this a ktp Arrow file?)`,
    )
  }
  const { kind, version } = meta.kind
  const spec = KINDS[kind]
  if (!spec || (accept.length > 0 && !accept.includes(kind))) {
    throw new KtpError('wrong-kind', `${source}: schema kind is '${kind}', expected ${accept.join(' or ')}`)
  }
  if (version !== spec.version) {
    throw new KtpError(
      'wrong-version',
      `${source}: ${kind}@${version} is not supported; this ktp reads ${kind}@${spec.version}`,
    )
  }
  for (const c of spec.columns) {
    const f = schema.fields.find((x) => x.name === c.name)
    if (!f) throw new KtpError('wrong-columns', `${source}: ${kind}@${version} lacks column '${c.name}'`)
    const shape = shapeOf(f.type)
    const elem = elemTypeName(f.type)
    if (shape !== c.shape || !c.types.includes(elem as ElemType)) {
      throw new KtpError(
        'wrong-columns',
        `${source}: column '${c.name}' is ${shape}<${elem}>, expected ${c.shape}<${c.types.join('|')}>`,
      )
    }
  }
  return spec
}

/** Two schemas carry the same columns with the same types (metadata aside). */
export function sameColumns(a: Schema, b: Schema): boolean {
  if (a.fields.length !== b.fields.length) return false
  return a.fields.every((f, i) => f.name === b.fields[i].name && String(f.type) === String(b.fields[i].type))
}
