/**
 * The model registry: every model type ktp can build, listed explicitly (no folder scanning). A new
 * type is one file under models/ (its `defineModelType` entry) plus one line in MODEL_TYPES; the
 * config schema, building, input layout, input width, export and layer-wise training all come
 * from the entry.
 */
import { z } from 'zod'
import type { Model, ModelConfigSchemaOf, ModelSpecOf, ModelType } from './model.js'
import { boundedBuild } from './init.js'
import { dnn } from './models/dnn.js'
import { recurrent } from './models/recurrent.js'
import { tdnn } from './models/tdnn.js'

export const MODEL_TYPES = [dnn, recurrent, tdnn] as const

/** The entries' schemas, as a tuple type (what z.discriminatedUnion needs to type the union). */
type SchemasOf<T extends readonly unknown[]> = {
  -readonly [K in keyof T]: T[K] extends { schema: infer S } ? S : never
}

export const ModelConfigSchema = z
  .discriminatedUnion('type', MODEL_TYPES.map((m) => m.schema) as SchemasOf<typeof MODEL_TYPES>)
  .describe('Acoustic model architecture')

export const ModelSpecSchema = z
  .object({
    model: ModelConfigSchema,
    inputDim: z.number().int().positive().describe('Feature dimension of one (spliced) input frame'),
    numClasses: z.number().int().positive().describe('Number of output classes (targets)'),
    seed: z.number().int().default(1).describe('Seed of the deterministic parameter initialisation'),
  })
  .strict()
  .describe('Everything needed to build (and rebuild identically) a model')

export type ModelConfig = z.infer<typeof ModelConfigSchema>
export type ModelConfigInput = z.input<typeof ModelConfigSchema>
export type ModelSpec = z.infer<typeof ModelSpecSchema>
export type ModelSpecInput = z.input<typeof ModelSpecSchema>

/** The type names an entry registers: its schema's `type` literal, or each value of its enum. */
function typeNames(schema: ModelConfigSchemaOf): string[] {
  const t = schema.shape.type
  return t instanceof z.ZodLiteral ? [...t.values].map(String) : t.options.map(String)
}

const BY_NAME = new Map<string, ModelType>(
  MODEL_TYPES.flatMap((m) => typeNames(m.schema).map((n) => [n, m as unknown as ModelType] as const)),
)

/** Every registered type name (dnn, lstm, …), in registry order. */
export const MODEL_TYPE_NAMES: readonly string[] = [...BY_NAME.keys()]

/** The registry entry of a config type; throws naming the registered types when there is none. */
export function modelType(type: string): ModelType {
  const m = BY_NAME.get(type)
  if (m == null) throw new Error(`unknown model type '${type}'; expected one of ${MODEL_TYPE_NAMES.join('|')}`)
  return m
}

/**
 * Validate a spec (throws a message naming the bad field) and build the model. The spec may come as
 * JSON gives it, or as a model carries it (`model.spec`: a replica, a reload).
 */
export function buildModel(input: ModelSpecInput | ModelSpecOf): Model {
  const parsed = ModelSpecSchema.safeParse(input)
  if (!parsed.success) {
    const msg = parsed.error.issues.map((i) => `${i.path.join('.') || '(spec)'}: ${i.message}`).join('; ')
    throw new Error(`invalid model spec: ${msg}`)
  }
  const spec = parsed.data
  const entry = modelType(spec.model.type)
  return { spec, input: entry.input, ...boundedBuild(() => entry.build(spec)) }
}
