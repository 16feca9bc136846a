/**
 * The common shape of every model, and of every entry of the model registry (registry.ts). A model
 * type is one file under models/ that describes itself with `ModelType`; the registry lists those
 * files, and everything that depends on the type (splicing, input width, export, layer-wise
 * training) asks the entry instead of switching on `type`.
 */
import type * as tf from '@tensorflow/tfjs'
import type { z } from 'zod'
import type { ParamSet, Params } from './params.js'

/**
 * What a model reads. 'frames': one (spliced) frame per row, x [N, D] → logits [N, C].
 * 'chunks': sequences of frames, x [B, T, D] → logits [B, T, C] (a whole utterance is one chunk).
 */
export type ModelInput = 'frames' | 'chunks'

/** A model config as every type has it: its `type`, and the fields its registry entry defines. */
export type ModelConfigBase = { type: string; [field: string]: unknown }

/** Everything needed to build (and rebuild identically) a model of config type C. */
export interface ModelSpecOf<C extends { type: string } = ModelConfigBase> {
  model: C
  /** Width of one input frame (spliced, for frame models). */
  inputDim: number
  numClasses: number
  /** Seed of the deterministic parameter initialisation. */
  seed: number
}

export interface Model {
  readonly spec: ModelSpecOf
  readonly params: ParamSet
  readonly input: ModelInput
  /** Logits. `p` substitutes parameter tensors (gradient checks, workers); default the variables. */
  apply(x: tf.Tensor, p?: Params): tf.Tensor
}

/** What a model file builds: its parameters and forward function (the registry adds spec and input). */
export type BuiltModel = Pick<Model, 'params' | 'apply'>

export interface ExportOptions {
  /** Append a softmax to the output layer (posteriors instead of logits). Default false. */
  softmax?: boolean
}

/** A config schema whose `type` field (a literal, or an enum for a family of cells) names the entry. */
export type ModelConfigSchemaOf = z.ZodObject<{ type: z.ZodLiteral<string> | z.ZodEnum<Record<string, string>> }>

/** One registered model type. */
export interface ModelType<S extends ModelConfigSchemaOf = ModelConfigSchemaOf> {
  /** The config's zod schema: fields, defaults, descriptions and cross-field checks. */
  schema: S
  /** Whether the trainer feeds single spliced frames or chunks of frames. */
  input: ModelInput
  /** Width of one input row from the feature dimension and the splicing context (±context frames). */
  inputDim(featureDim: number, context: number): number
  /** Parameters (initialised deterministically from spec.seed) and the forward function. */
  build(spec: ModelSpecOf<z.output<S>>): BuiltModel
  /**
   * The same network as standard tfjs-layers (tf.sequential) with the trained weights, predicting
   * the same logits. Absent: the type has no tfjs-layers export (toLayersModel says so).
   */
  export?(spec: ModelSpecOf<z.output<S>>, weights: Record<string, Float32Array>, opts: ExportOptions): tf.Sequential
  /**
   * Layer-wise training (`--mode layerwise-kt`): how many layers the model grows one at a time, the
   * config with only its first n of them, and which parameters belong to those layers (carried over
   * from the shallower model; the rest, e.g. the output layer, start fresh). Absent: not supported.
   */
  layerwise?: {
    depth(config: z.output<S>): number
    truncated(config: z.output<S>, layers: number): z.output<S>
    isLayerParam(name: string): boolean
  }
}

/** Declare a model type (keeps the schema's own config type for build, export and layerwise). */
export function defineModelType<S extends ModelConfigSchemaOf>(entry: ModelType<S>): ModelType<S> {
  return entry
}
