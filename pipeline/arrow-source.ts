import { open } from 'node:fs/promises'
import { RecordBatch, RecordBatchReader, Schema } from 'apache-arrow'
import _ from 'highland'
import { KtpError } from '../schemas/errors.js'
import { KindSpec, sameColumns, validateSchema } from '../schemas/kinds.js'
import { rowsOf } from '../schemas/utterance.js'

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
}

type AsyncReader = AsyncIterableIterator<RecordBatch> & { schema: Schema; open(): Promise<unknown>; cancel?(): Promise<void> }

function corrupt(name: string, err: unknown): KtpError {
  if (err instanceof KtpError) return err
  const msg = (err as Error)?.message ?? String(err)
  return new KtpError('corrupt-arrow', `${name}: not a readable Arrow IPC file or stream (${msg})`)
}

export async function openArrow(src: string, accept: string[]): Promise<ArrowSource> {
  const name = src === '-' ? 'stdin' : src
  let reader: AsyncReader
  try {
    const input = src === '-' ? process.stdin : await open(src, 'r')
    reader = (await RecordBatchReader.from(input as never)) as unknown as AsyncReader
    await reader.open()
  } catch (err) {
    const code = (err as NodeJS.ErrnoException)?.code
    if (code === 'ENOENT') throw new KtpError('no-file', `${name}: no such file`)
    if (code === 'EACCES') throw new KtpError('unreadable', `${name}: permission denied`)
    if (code === 'EISDIR') throw new KtpError('is-dir', `${name}: is a directory, expected an Arrow file`)
    throw corrupt(name, err)
  }
  if (!reader.schema) throw new KtpError('corrupt-arrow', `${name}: empty input, expected an Arrow IPC stream or file`)
  const schema = reader.schema
  const spec = validateSchema(schema, accept, name)
  let used = false
  return {
    name,
    schema,
    spec,
    stream() {
      if (used) throw new KtpError('reused-source', `${name}: an input can be streamed only once`)
      used = true
      return _<RecordBatch>((push, next) => {
        reader.next().then(
          (r) => {
            if (r.done) return push(null, _.nil)
            if (!sameColumns(r.value.schema, schema)) {
              push(new KtpError('schema-changed', `${name}: a record batch's columns differ from the file's schema`))
              return push(null, _.nil)
            }
            for (const row of rowsOf(r.value)) push(null, row)
            next()
          },
          (err) => {
            push(corrupt(name, err))
            push(null, _.nil)
          },
        )
      })
    },
  }
}
