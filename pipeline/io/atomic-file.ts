import { closeSync, createWriteStream, fsyncSync, openSync, renameSync, rmSync, statSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { ensureDir, fsError, fsyncDir, writeAll } from './fs-errors.js'
import { onAbort } from './signals.js'

/**
 * Write a whole small file (JSON stats, a data-dir table, a trn, a checkpoint, a model's
 * params.bin) so that a reader never sees half of it: temp name in the same directory, every
 * byte checked written (a full disk writes short), fsync, rename, fsync the directory. After a
 * kill -9 or a failure the old file or the new one is there, never a torn one; a failure removes
 * the temp file and throws a KtpError naming `path` and the reason (ENOSPC, EROFS, …), so that
 * no caller can report as written a file that is not whole.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
  if (isDevice(path)) {
    writeDevice(path, bytes)
    return
  }
  const dir = dirname(path)
  ensureDir(dir)
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}`)
  let fd: number | null = null
  try {
    fd = openSync(tmp, 'w')
    writeAll(fd, bytes)
    fsyncSync(fd)
    closeSync(fd)
    fd = null
    renameSync(tmp, path)
  } catch (err) {
    if (fd !== null) closeSync(fd)
    try {
      rmSync(tmp, { force: true })
    } catch {
      /* the write's own error is the one to report */
    }
    throw fsError(err, path, 'write')
  }
  fsyncDir(dir)
}

/** An existing device, FIFO or socket (`-o /dev/stdout`, `-o /dev/null`): renaming over it would replace it. */
function isDevice(path: string): boolean {
  try {
    const st = statSync(path)
    return !st.isFile() && !st.isDirectory()
  } catch {
    return false
  }
}

function writeDevice(path: string, bytes: Uint8Array): void {
  let fd: number | null = null
  try {
    fd = openSync(path, 'w')
    writeAll(fd, bytes)
  } catch (err) {
    throw fsError(err, path, 'write')
  } finally {
    if (fd !== null) closeSync(fd)
  }
}

/**
 * A text or binary output written as a stream but appearing whole or not at all, as
 * `writeFileAtomic`: the bytes go to a temp name beside `path`, `commit()` fsyncs and renames it
 * into place; `abort()`, or a stop by a signal, removes it. A device (`-o /dev/null`) is written
 * straight through.
 */
export interface AtomicStream {
  stream: NodeJS.WritableStream
  commit: () => Promise<void>
  abort: () => void
}

export function openAtomicStream(path: string): AtomicStream {
  if (isDevice(path)) {
    const stream = createWriteStream(path)
    return { stream, commit: () => new Promise((r) => stream.end(r)), abort: () => stream.destroy() }
  }
  const dir = dirname(path)
  ensureDir(dir)
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}`)
  const stream = createWriteStream(tmp)
  // kept for commit() (an unheard 'error' event would crash the process instead of naming the file)
  let failed: unknown = null
  stream.on('error', (err) => {
    failed ??= err
  })
  const remove = () => {
    stream.destroy()
    rmSync(tmp, { force: true })
  }
  const forget = onAbort(remove)
  return {
    stream,
    commit: async () => {
      try {
        if (failed === null) await new Promise<void>((resolve) => stream.end(resolve))
        if (failed !== null) throw failed
        const fd = openSync(tmp, 'r')
        fsyncSync(fd)
        closeSync(fd)
        renameSync(tmp, path)
      } catch (err) {
        remove()
        throw fsError(err, path, 'write')
      } finally {
        forget()
      }
      fsyncDir(dir)
    },
    abort: () => {
      forget()
      remove()
    },
  }
}
