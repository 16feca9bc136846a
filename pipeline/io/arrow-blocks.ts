import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { type RecordBatch, RecordBatchReader, type Schema } from 'apache-arrow'
import { KtpError } from '../../schemas/errors.js'
import { BatchEncoder } from './arrow-encoder.js'
import { type KindSpec, validateSchema } from '../../schemas/kinds.js'

/**
 * A synchronous block reader over an Arrow file on disk (IPC file or stream format), for the
 * training feeders: the file is read with `readSync` in blocks of `blockBytes` (fresh buffers, since
 * record batches are zero-copy views into them) and decoded by apache-arrow's synchronous stream
 * reader — no promise, file-handle round trip or highland step per record batch, which is what
 * bounded soft-target reading (issue 16). Memory stays bounded by a block and the batch in hand.
 * An IPC *file* holds the stream's messages between its leading magic and its footer, but its
 * schema only in the footer: the schema is read from the footer, and its stream message put before
 * the file's messages.
 */
export interface ArrowBlocks {
  name: string
  schema: Schema
  spec: KindSpec
  /** The next record batch, or null at the end. */
  next(): RecordBatch | null
  close(): void
}

const MAGIC = 'ARROW1'
const EOS = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])

function corrupt(name: string, err: unknown): KtpError {
  if (err instanceof KtpError) return err
  return new KtpError(
    'corrupt-arrow',
    `${name}: not a readable Arrow IPC file or stream (${(err as Error)?.message ?? String(err)})`,
  )
}

/** The stream message of an Arrow file's schema, read from its footer (bytes [footerStart, size)). */
function fileSchemaMessage(fd: number, footerStart: number, size: number): Uint8Array {
  const footer = Buffer.alloc(size - footerStart)
  readSync(fd, footer, 0, footer.length, footerStart)
  // magic + footer + length + magic: a file with no record batch in it, whose reader gives the schema
  const file = Buffer.concat([Buffer.from('ARROW1\0\0', 'latin1'), footer])
  const reader = RecordBatchReader.from(new Uint8Array(file.buffer, file.byteOffset, file.byteLength))
  reader.open()
  if (!reader.schema) throw new Error('no schema in the footer')
  return Buffer.concat(new BatchEncoder(reader.schema, 'stream').begin())
}

export function openArrowBlocks(path: string, accept: string[], blockBytes = 1 << 22): ArrowBlocks {
  let fd: number | null
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new KtpError('no-file', `${path}: no such file`)
    if (code === 'EACCES') throw new KtpError('unreadable', `${path}: permission denied`)
    throw err
  }
  const close = () => {
    if (fd != null) closeSync(fd)
    fd = null
  }
  try {
    const size = fstatSync(fd).size
    const head = Buffer.alloc(Math.min(8, size))
    readSync(fd, head, 0, head.length, 0)
    let start = 0
    let end = size
    let schemaMessage: Uint8Array | null = null
    if (head.toString('latin1', 0, 6) === MAGIC) {
      const tail = Buffer.alloc(10)
      if (size < 18) throw new Error('too short for an Arrow file')
      readSync(fd, tail, 0, 10, size - 10)
      if (tail.toString('latin1', 4, 10) !== MAGIC)
        throw new KtpError(
          'corrupt-arrow',
          `${path}: truncated Arrow file (it starts like one but has no footer: cut short by a copy or by a writer that did not finish)`,
        )
      start = 8
      end = size - 10 - tail.readInt32LE(0)
      if (end < start) throw new Error('footer length out of range')
      schemaMessage = fileSchemaMessage(fd, end, size)
    }
    const f = fd
    const blocks = function* (): Generator<Uint8Array> {
      if (schemaMessage) yield schemaMessage
      for (let pos = start; pos < end; ) {
        const n = Math.min(blockBytes, end - pos)
        const buf = Buffer.allocUnsafe(n)
        const got = readSync(f, buf, 0, n, pos)
        if (got <= 0) throw new Error(`unexpected end of file at byte ${pos}`)
        pos += got
        yield got === n ? buf : buf.subarray(0, got)
      }
      // a file's message stream may end at its footer without an end-of-stream marker
      if (start > 0) yield EOS
    }
    const reader = RecordBatchReader.from(blocks()) as unknown as IterableIterator<RecordBatch> & {
      schema: Schema
      open(): unknown
    }
    reader.open()
    if (!reader.schema)
      throw new KtpError('corrupt-arrow', `${path}: empty input, expected an Arrow IPC stream or file`)
    const schema = reader.schema
    const spec = validateSchema(schema, accept, path)
    return {
      name: path,
      schema,
      spec,
      next() {
        try {
          const r = reader.next()
          return r.done ? null : r.value
        } catch (err) {
          close()
          throw corrupt(path, err)
        }
      },
      close,
    }
  } catch (err) {
    close()
    throw corrupt(path, err)
  }
}
