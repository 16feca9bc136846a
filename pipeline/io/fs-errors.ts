import { closeSync, fsyncSync, mkdirSync, openSync, statSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { KtpError } from '../../schemas/errors.js'

/**
 * File-system failures as one actionable line. Node's own messages ("ENOSPC: no space left on
 * device, write") name neither the file the user gave nor what ktp was doing, and reach the user
 * as an internal error with a stack trace; these name both, and keep the errno code for searching.
 */
const PHRASES: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a part of the path is not a directory',
  EEXIST: 'a file of that name exists where a directory is needed',
  EISDIR: 'it is a directory',
  ENOENT: 'no such file or directory (or this file system does not allow creating it)',
  EFBIG: 'the file is too large for this file system',
  EIO: 'input/output error',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many levels of symbolic links',
  ENXIO: 'no such device (a FIFO without a writer or reader, or a socket)',
}

export function errnoCode(err: unknown): string | undefined {
  const c = (err as NodeJS.ErrnoException | null)?.code
  return typeof c === 'string' && /^E[A-Z0-9]+$/.test(c) ? c : undefined
}

/** A Node errno error from the file system (it has a code and a syscall), as opposed to a ktp error. */
export function isFsError(err: unknown): err is NodeJS.ErrnoException {
  return (
    !(err instanceof KtpError) &&
    errnoCode(err) !== undefined &&
    typeof (err as NodeJS.ErrnoException).syscall === 'string'
  )
}

/**
 * `path: cannot DOING: the reason (CODE)`. A KtpError passes through unchanged; anything that is
 * not an errno error is returned as it is (it is a bug, reported with its stack).
 */
export function fsError(err: unknown, path: string, doing: string): unknown {
  if (err instanceof KtpError) return err
  const code = errnoCode(err)
  if (!code) return err
  const why = PHRASES[code] ?? (err as Error).message.replace(/^E[A-Z0-9]+: /, '').replace(/, \w+ .*$/, '')
  return new KtpError(`fs-${code.toLowerCase()}`, `${path}: cannot ${doing}: ${why} (${code})`)
}

/** Describe an errno error thrown anywhere (the CLI's last resort), by the path Node recorded. */
export function describeFsError(err: NodeJS.ErrnoException): KtpError {
  const path = (err as { dest?: string }).dest ?? err.path ?? '(unknown file)'
  const doing =
    {
      open: 'open',
      write: 'write',
      read: 'read',
      mkdir: 'create directory',
      rename: 'rename into place',
      fsync: 'write (fsync)',
      close: 'write (close)',
      unlink: 'remove',
      rmdir: 'remove',
      scandir: 'list',
      stat: 'stat',
      lstat: 'stat',
      copyfile: 'copy',
    }[err.syscall ?? ''] ?? err.syscall
  return fsError(err, path, doing ?? 'access') as KtpError
}

/**
 * mkdir -p that reports the real reason. Node's recursive mkdirSync spins forever where mkdir
 * fails with ENOENT under an existing parent (/proc), and reports a read-only file system as
 * ENOENT; one mkdir per missing level gives the kernel's own answer.
 */
export function ensureDir(dir: string): void {
  let st: ReturnType<typeof statSync> | undefined
  try {
    st = statSync(dir)
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw fsError(err, dir, 'create directory')
  }
  if (st) {
    if (!st.isDirectory())
      throw new KtpError('fs-enotdir', `${dir}: cannot create directory: a file of that name exists (ENOTDIR)`)
    return
  }
  const parent = dirname(dir)
  if (parent !== dir) ensureDir(parent)
  try {
    mkdirSync(dir)
  } catch (err) {
    // another process may have made it in between
    if (errnoCode(err) === 'EEXIST' && statSync(dir).isDirectory()) return
    throw fsError(err, dir, 'create directory')
  }
}

/**
 * Write all of `data` at the file's position. write(2) may write less than asked (a full disk
 * writes what fits and fails only on the next call): loop until every byte is written, and take a
 * write of 0 bytes as a full disk rather than spinning.
 */
export function writeAll(fd: number, data: Uint8Array): void {
  for (let off = 0; off < data.byteLength; ) {
    const n = writeSync(fd, data, off, data.byteLength - off)
    if (n <= 0) {
      const e = new Error('ENOSPC: no space left on device, write') as NodeJS.ErrnoException
      e.code = 'ENOSPC'
      e.syscall = 'write'
      throw e
    }
    off += n
  }
}

/** fsync a directory, so that a rename into it survives a power cut. */
export function fsyncDir(dir: string): void {
  let fd: number
  try {
    fd = openSync(dir, 'r')
  } catch {
    return // some file systems do not open directories for reading: nothing to sync then
  }
  try {
    fsyncSync(fd)
  } catch (err) {
    // EINVAL/EBADF: directory fsync unsupported here (some network file systems); anything else is real
    if (!['EINVAL', 'EBADF', 'ENOTSUP'].includes(errnoCode(err) ?? '')) throw fsError(err, dir, 'write (fsync)')
  } finally {
    closeSync(fd)
  }
}
