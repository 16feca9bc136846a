/**
 * An ONNX graph of a ktp DNN, written from its weights, and ONNX Runtime (`onnxruntime-node`, an
 * optional dependency: detected, never required) to run it — `ktp infer --backend onnxruntime`.
 *
 * The graph is what `torch.onnx.export` makes of the same network (Linear → Gemm, then the
 * activation), ending in LogSoftmax: input `x` [N, D] float32, output `logp` [N, C]. The ONNX
 * protobuf is encoded here (a dozen fields of ModelProto, GraphProto, NodeProto, TensorProto and
 * ValueInfoProto), since neither onnxruntime-node nor ktp's other dependencies write ONNX.
 */
import { KtpError } from '../../schemas/errors.js'
import type { Model } from './model.js'
import { dnnLayerName, dnnSizes, type DnnConfig } from './models/dnn.js'

// --- a minimal protobuf writer ------------------------------------------------------------------

class Proto {
  private readonly parts: Uint8Array[] = []
  private varint(v: number | bigint): void {
    let x = BigInt(v)
    if (x < 0n) x += 1n << 64n
    const b: number[] = []
    do {
      let byte = Number(x & 0x7fn)
      x >>= 7n
      if (x > 0n) byte |= 0x80
      b.push(byte)
    } while (x > 0n)
    this.parts.push(Uint8Array.from(b))
  }
  int(field: number, v: number): this {
    this.varint(field << 3)
    this.varint(v)
    return this
  }
  bytes(field: number, v: Uint8Array): this {
    this.varint((field << 3) | 2)
    this.varint(v.length)
    this.parts.push(v)
    return this
  }
  str(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s))
  }
  msg(field: number, m: Proto): this {
    return this.bytes(field, m.finish())
  }
  finish(): Uint8Array {
    const n = this.parts.reduce((a, p) => a + p.length, 0)
    const out = new Uint8Array(n)
    let o = 0
    for (const p of this.parts) {
      out.set(p, o)
      o += p.length
    }
    return out
  }
}

const FLOAT = 1 // TensorProto.DataType.FLOAT

function tensor(name: string, dims: number[], data: Float32Array): Proto {
  const p = new Proto()
  for (const d of dims) p.int(1, d)
  p.int(2, FLOAT).str(8, name)
  return p.bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
}

function valueInfo(name: string, dims: Array<number | string>): Proto {
  const shape = new Proto()
  for (const d of dims) shape.msg(1, typeof d === 'number' ? new Proto().int(1, d) : new Proto().str(2, d))
  const tensorType = new Proto().int(1, FLOAT).msg(2, shape)
  return new Proto().str(1, name).msg(2, new Proto().msg(1, tensorType))
}

function node(op: string, inputs: string[], outputs: string[], name: string): Proto {
  const p = new Proto()
  for (const i of inputs) p.str(1, i)
  for (const o of outputs) p.str(2, o)
  return p.str(3, name).str(4, op)
}

const ACTIVATION_OPS: Record<DnnConfig['activation'], string> = { sigmoid: 'Sigmoid', tanh: 'Tanh', relu: 'Relu' }

/** The ONNX model (ModelProto bytes) of a ktp DNN: x [N, D] → logp [N, C] (log-softmax). */
export function dnnToOnnx(model: Model): Uint8Array {
  const spec = model.spec
  if (spec.model.type !== 'dnn')
    throw new KtpError(
      'unsupported-model',
      `--backend onnxruntime runs DNN (frame) models only, this model is '${spec.model.type}'; use --backend wasm`,
    )
  const cfg = spec.model as DnnConfig
  const sizes = dnnSizes(cfg, spec.inputDim, spec.numClasses)
  const L = sizes.length - 1
  const graph = new Proto()
  let h = 'x'
  for (let l = 0; l < L; l++) {
    const name = dnnLayerName(l, L)
    const W = model.params.get(`${name}.W`).dataSync() as Float32Array
    const b = model.params.get(`${name}.b`).dataSync() as Float32Array
    graph.msg(5, tensor(`${name}.W`, [sizes[l], sizes[l + 1]], W))
    graph.msg(5, tensor(`${name}.b`, [sizes[l + 1]], b))
    const z = `${name}.z`
    graph.msg(1, node('Gemm', [h, `${name}.W`, `${name}.b`], [z], `${name}.gemm`))
    if (l < L - 1) {
      graph.msg(1, node(ACTIVATION_OPS[cfg.activation], [z], [`${name}.a`], `${name}.act`))
      h = `${name}.a`
    } else h = z
  }
  graph.msg(1, node('LogSoftmax', [h], ['logp'], 'logsoftmax'))
  graph.str(2, 'ktp-dnn')
  graph.msg(11, valueInfo('x', ['N', sizes[0]]))
  graph.msg(12, valueInfo('logp', ['N', sizes[L]]))
  return new Proto()
    .int(1, 7) // ir_version
    .str(2, 'ktp')
    .msg(8, new Proto().str(1, '').int(2, 13)) // opset 13
    .msg(7, graph)
    .finish()
}

// --- ONNX Runtime ------------------------------------------------------------------------------

// The few parts of onnxruntime-node's API used here, typed locally so ktp builds without it.
interface OrtSession {
  run(feeds: Record<string, unknown>): Promise<Record<string, { data: unknown }>>
  release(): Promise<void>
}
interface Ort {
  env: { versions?: { node?: string } }
  Tensor: new (type: 'float32', data: Float32Array, dims: number[]) => unknown
  InferenceSession: { create(model: Uint8Array, options: Record<string, unknown>): Promise<OrtSession> }
}

const ORT_PACKAGE = 'onnxruntime-node'
let ortPromise: Promise<Ort | Error> | null = null
function loadOrt(): Promise<Ort | Error> {
  // a variable specifier: the package is optional, so neither tsc nor a bundler may require it
  ortPromise ??= import(ORT_PACKAGE).then(
    (m) => ((m as unknown as { default?: Ort }).default ?? m) as Ort,
    (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
  )
  return ortPromise
}

/** Is onnxruntime-node installed and loadable? (`detail`: its version, or why not) */
export async function onnxRuntimeAvailable(): Promise<{ ok: boolean; detail: string }> {
  const ort = await loadOrt()
  if (ort instanceof Error)
    return {
      ok: false,
      detail: `onnxruntime-node not installed (npm install onnxruntime-node): ${ort.message.split('\n')[0]}`,
    }
  return { ok: true, detail: `onnxruntime-node ${ort.env.versions?.node ?? ''}`.trim() }
}

/** A DNN on ONNX Runtime's CPU provider: logProbs(x, rows) → [rows × C] log-probabilities. */
export class OrtDnn {
  private constructor(
    private readonly ort: Ort,
    private readonly session: OrtSession,
    readonly inputDim: number,
    readonly numClasses: number,
  ) {}

  /** Threads: KTP_ORT_THREADS, or 1 (one thread, as the wasm backend). */
  static async create(model: Model): Promise<OrtDnn> {
    const ort = await loadOrt()
    if (ort instanceof Error)
      throw new KtpError(
        'backend-unavailable',
        '--backend onnxruntime needs the optional package onnxruntime-node (npm install onnxruntime-node); or use --backend wasm',
      )
    const threads = Number(process.env.KTP_ORT_THREADS ?? 1)
    const session = await ort.InferenceSession.create(dnnToOnnx(model), {
      executionProviders: ['cpu'],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    })
    return new OrtDnn(ort, session, model.spec.inputDim, model.spec.numClasses)
  }

  async logProbs(x: Float32Array, rows: number): Promise<Float32Array> {
    const input = new this.ort.Tensor('float32', x, [rows, this.inputDim])
    const out = await this.session.run({ x: input })
    return out.logp.data as Float32Array
  }

  async close(): Promise<void> {
    await this.session.release()
  }
}
