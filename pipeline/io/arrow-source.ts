import { open } from 'node:fs/promises'
import { type Data, DataType, type RecordBatch, RecordBatchReader, type Schema } from 'apache-arrow'
import { AsyncRandomAccessFile, RandomAccessFile } from 'apache-arrow/io/file'
import { ByteBuffer } from 'flatbuffers'
import _ from 'highland'
import { KtpError } from '../../schemas/errors.js'
import { type KindSpec, sameColumns, validateSchema } from '../../schemas/kinds.js'
import { rowsOf } from '../../schemas/utterance.js'

/**
 * A ktp Arrow input (file path, or `-` for stdin) whose schema has been read and validated.
 * `stream()` yields one utterance per record batch, pulled lazily so that a slow consumer
 * holds back the reader (highland backpressure) instead of buffering the whole input.
 */
export interface ArrowSource {
  name: string
  schema: Schema
  spec: KindSpec
  stream(): Highland.Stream<RecordBatch>
  /** Release the file handle (done automatically when the stream ends or fails). */
  close(): Promise<void>
}

/**
 * Guard against a loop in apache-arrow 21's file readers: a corrupt message length (e.g. one byte
 * of an IPC continuation marker flipped, making the length -256) makes `read(n)` move the read
 * position *backwards* and the reader spins forever at 100% CPU (found by test/fuzz.test.ts).
 * A negative or non-finite read length can only come from corrupt bytes: fail instead, which
 * openArrow reports as a corrupt-input KtpError.
 */
for (const C of [RandomAccessFile, AsyncRandomAccessFile] as unknown as {
  prototype: { read(n?: number): unknown }
}[]) {
  const read = C.prototype.read
  C.prototype.read = function guardedRead(this: unknown, n?: number) {
    if (typeof n === 'number' && !(n >= 0)) throw new Error(`corrupt length ${n} in a message header`)
    return read.call(this, n)
  }
}

/**
 * Second guard: flatbuffers (Arrow's metadata encoding) does not bounds-check, so a corrupt vector
 * length in a message header (e.g. a record batch claiming 2^31 field nodes) makes apache-arrow
 * decode garbage for minutes while memory grows (also found by test/fuzz.test.ts). A vector holds
 * at least one byte per element, so more elements than the buffer has bytes is corrupt.
 */
{
  const proto = ByteBuffer.prototype as unknown as { __vector_len(offset: number): number; capacity(): number }
  const vectorLen = proto.__vector_len
  proto.__vector_len = function guardedVectorLen(this: typeof proto, offset: number) {
    const n = vectorLen.call(this, offset)
    if (!(n >= 0 && n <= this.capacity()))
      throw new Error(`corrupt metadata: a vector claims ${n} elements in ${this.capacity()} bytes`)
    return n
  }
}

/**
 * apache-arrow builds a record batch from its header without checking the header's lengths against
 * the buffers that follow (a corrupt row count of 16 million over one row's buffers is taken as
 * is, and splitting it into rows exhausts memory). Check that every column's offsets and values
 * cover its rows before handing the batch on. Returns what is wrong, or null.
 */
function misfit(d: Data, path: string): string | null {
  const n = d.offset + d.length
  const t = d.type
  const child = d.children?.[0] as Data | undefined
  if (DataType.isList(t) || DataType.isUtf8(t) || DataType.isBinary(t)) {
    const o = d.valueOffsets as ArrayLike<number | bigint> | undefined
    if (!o || o.length < n + 1) return `${path}: ${o?.length ?? 0} offsets for ${n} rows`
    let prev = Number(o[0])
    if (prev < 0) return `${path}: negative offset`
    for (let i = 1; i <= n; i++) {
      const x = Number(o[i])
      if (x < prev) return `${path}: offsets go backwards`
      prev = x
    }
    if (DataType.isList(t)) {
      if (!child || prev > child.offset + child.length) return `${path}: offsets run past the values`
      return misfit(child, `${path}[]`)
    }
    return d.values && prev <= d.values.length ? null : `${path}: offsets run past the data`
  }
  if (DataType.isFixedSizeList(t)) {
    const size = (t as unknown as { listSize: number }).listSize
    if (!child || child.offset + child.length < n * size) return `${path}: too few values for ${n} rows of ${size}`
    return misfit(child, `${path}[]`)
  }
  const stride = (d as unknown as { stride?: number }).stride ?? 1
  if (d.values && d.values.length < n * stride) return `${path}: ${d.values.length} values for ${n} rows`
  return null
}

function checkBatch(b: RecordBatch): void {
  b.schema.fields.forEach((f, i) => {
    const d = b.data.children[i] as Data | undefined
    const bad = !d
      ? `no data for column '${f.name}'`
      : d.length !== b.numRows
        ? `column '${f.name}' has ${d.length} rows, its batch ${b.numRows}`
        : misfit(d, `column '${f.name}'`)
    if (bad) throw new Error(`inconsistent record batch: ${bad}`)
  })
}

type AsyncReader = AsyncIterableIterator<RecordBatch> & {
  schema: Schema
  open(): Promise<unknown>
  cancel?(): Promise<void>
  isFile(): boolean
  numRecordBatches?: number
  readRecordBatch?(index: number): RecordBatch | null | Promise<RecordBatch | null>
}

/** An Arrow *file* starts and ends with the magic `ARROW1`; one that only starts with it was cut short. */
async function lacksFooter(fh: Awaited<ReturnType<typeof open>>): Promise<boolean> {
  try {
    const { size } = await fh.stat()
    if (size < 12) return false
    const head = Buffer.alloc(6)
    const tail = Buffer.alloc(6)
    await fh.read(head, 0, 6, 0)
    await fh.read(tail, 0, 6, size - 6)
    return head.toString('latin1') === 'ARROW1' && tail.toString('latin1') !== 'ARROW1'
  } catch {
    return false
  }
}

function corrupt(name: string, err: unknown): KtpError {
  if (err instanceof KtpError) return err
  const msg = (err as Error)?.message ?? String(err)
  return new KtpError('corrupt-arrow', `${name}: not a readable Arrow IPC file or stream (${msg})`)
}

/**
 * stdin: an Arrow IPC stream is read as it comes; Arrow *file* bytes (`cat x.arrow | ktp …`) need
 * random access to their footer, so those are read whole first — the only case that buffers.
 */
async function stdinInput(): Promise<Uint8Array | AsyncIterable<Uint8Array>> {
  const it = process.stdin[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  const chunks: Buffer[] = []
  let size = 0
  while (size < 6) {
    const r = await it.next()
    if (r.done) return Buffer.concat(chunks)
    chunks.push(r.value)
    size += r.value.length
  }
  const head = Buffer.concat(chunks)
  const rest = { [Symbol.asyncIterator]: () => it }
  if (head.toString('latin1', 0, 6) === 'ARROW1') {
    const all: Buffer[] = [head]
    for await (const c of rest) all.push(c)
    return Buffer.concat(all)
  }
  // An async iterable of byte chunks, not a Node stream: apache-arrow reads Node streams by racing
  // each 'readable' event against the stream's 'end'/'error' promises, which stay pending to the
  // end, so every read left a reaction behind — heap grew ~2 KB per record batch (measured: 100 MB
  // over 50k batches; flat with an iterable). Its iterable reader slices exact byte ranges across
  // chunks, so messages that span pipe chunks are whole (test/cli-pipes.test.ts).
  return (async function* () {
    yield head
    for await (const c of rest) yield c
  })()
}

export async function openArrow(src: string, accept: string[]): Promise<ArrowSource> {
  const name = src === '-' ? 'stdin' : src
  let reader: AsyncReader
  let fh: Awaited<ReturnType<typeof open>> | null = null
  const close = async () => {
    const h = fh
    fh = null
    await h?.close().catch(() => {})
  }
  try {
    if (src !== '-') fh = await open(src, 'r')
    const input = fh ?? (await stdinInput())
    reader = (await RecordBatchReader.from(input as never)) as unknown as AsyncReader
    await reader.open()
  } catch (err) {
    const code = (err as NodeJS.ErrnoException)?.code
    if (code === 'ENOENT') throw new KtpError('no-file', `${name}: no such file`)
    if (code === 'EACCES') throw new KtpError('unreadable', `${name}: permission denied`)
    const torn = code === undefined && fh ? await lacksFooter(fh) : false
    await close()
    if (code === 'EISDIR') throw new KtpError('is-dir', `${name}: is a directory, expected an Arrow file`)
    if (torn) {
      throw new KtpError(
        'corrupt-arrow',
        `${name}: truncated Arrow file (it starts like one but has no footer: cut short by a copy or by a writer that did not finish)`,
      )
    }
    throw corrupt(name, err)
  }
  if (!reader.schema) {
    await close()
    throw new KtpError('corrupt-arrow', `${name}: empty input, expected an Arrow IPC stream or file`)
  }
  const schema = reader.schema
  let spec: KindSpec
  try {
    spec = validateSchema(schema, accept, name)
  } catch (err) {
    await close()
    // a schema whose types are malformed (corrupt bytes) can trip the checks themselves
    throw err instanceof KtpError ? err : corrupt(name, err)
  }
  let used = false
  let rows = 0
  // An Arrow *file* is read block by block through its footer: apache-arrow's own iterator
  // re-reads a block whose message is not a record batch (corrupt header bytes) forever.
  let index = 0
  const isFile = reader.isFile() && typeof reader.readRecordBatch === 'function'
  const nextBatch = async (): Promise<IteratorResult<RecordBatch>> => {
    if (!isFile) return reader.next()
    const n = reader.numRecordBatches ?? 0
    if (index >= n) return { done: true, value: undefined }
    const b = await reader.readRecordBatch!(index)
    if (!b) throw new Error(`record batch ${index + 1} of ${n} is not a readable record batch`)
    index++
    return { done: false, value: b }
  }
  return {
    name,
    schema,
    spec,
    close,
    stream() {
      if (used) throw new KtpError('reused-source', `${name}: an input can be streamed only once`)
      used = true
      return _<RecordBatch>((push, next) => {
        // sync readers (file bytes from stdin) return results, async ones promises; a sync reader
        // may also throw, so call it inside the chain, where a throw becomes the rejection below
        Promise.resolve()
          .then(() => nextBatch())
          .then((r) => {
            if (r.done) return { done: true as const }
            // A stream without record batches (an empty shard: schema, then end of stream) is
            // handed over by apache-arrow as one placeholder batch of 0 rows and no column data.
            if (r.value.numRows === 0) return { rows: [] }
            if (!sameColumns(r.value.schema, schema)) return { changed: true as const }
            checkBatch(r.value)
            return { rows: [...rowsOf(r.value)] }
          })
          .then(
            (r) => {
              if ('done' in r) {
                void close()
                return push(null, _.nil)
              }
              if ('changed' in r) {
                push(new KtpError('schema-changed', `${name}: a record batch's columns differ from the file's schema`))
                return push(null, _.nil)
              }
              for (const row of r.rows) {
                rows++
                push(null, row)
              }
              next()
            },
            (err) => {
              void close()
              push(
                err instanceof KtpError
                  ? err
                  : new KtpError(
                      'corrupt-arrow',
                      `${name}: truncated or corrupt after ${rows} utterance(s) (${(err as Error)?.message ?? String(err)})`,
                    ),
              )
              push(null, _.nil)
            },
          )
      })
    },
  }
}
