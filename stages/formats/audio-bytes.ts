import { spawn } from 'node:child_process'
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs'
import { UttError } from '../../schemas/errors.js'
import { isCommand, resolveEntry } from './datadir-io.js'

/**
 * Reading one utterance's audio bytes, apart from the data dir machinery (Arrow, highland) so that
 * a `ktp features --jobs N` worker, which only reads and computes, starts without loading them.
 */
export function refused(utt: string, entry: string, file: string): UttError {
  return new UttError(
    'command-refused',
    utt,
    `wav.scp entry is a command ('${entry}'); ktp runs wav.scp commands only with --allow-commands`,
    file,
  )
}

const STDERR_TAIL = 2000

/**
 * A regular file's bytes, as readFileSync reads them: `size` bytes (fewer if it shrank
 * meanwhile), or to the end when its size reads 0 (files of pseudo file systems).
 */
function readWhole(fd: number, size: number): Buffer {
  if (size === 0) {
    const parts: Buffer[] = []
    for (;;) {
      const b = Buffer.allocUnsafe(64 << 10)
      const n = readSync(fd, b, 0, b.length, -1)
      if (n === 0) return Buffer.concat(parts)
      parts.push(b.subarray(0, n))
    }
  }
  const buf = Buffer.allocUnsafe(size)
  let got = 0
  while (got < size) {
    const n = readSync(fd, buf, got, size - got, -1)
    if (n === 0) break
    got += n
  }
  return got < size ? buf.subarray(0, got) : buf
}

/**
 * The bytes of one utterance's recording: the file, or the stdout of its wav.scp command (run with
 * `sh -c` exactly as written). Failures are UttErrors naming the utterance and the entry.
 */
export async function readAudioBytes(
  entry: string,
  opts: { utt: string; allowCommands?: boolean; file?: string },
): Promise<Buffer> {
  const file = opts.file ?? 'wav.scp'
  if (!isCommand(entry)) {
    try {
      // Synchronous: a recording is small and usually in the page cache, and the promise API
      // costs four thread-pool round trips (open, fstat, read, close) per file, which on a busy
      // machine left `ktp features` idle for a fifth of its run. Workers (--jobs N) read in parallel.
      // Opened non-blocking and checked with fstat before reading: opening a FIFO would block
      // until some process writes to it, reading a directory fails with EISDIR. (One open and
      // fstat instead of stat + readFileSync's own open and fstat: two syscalls fewer per file.)
      const fd = openSync(resolveEntry(entry), constants.O_RDONLY | constants.O_NONBLOCK)
      try {
        const st = fstatSync(fd)
        if (!st.isFile())
          throw new UttError(
            'not-a-file',
            opts.utt,
            `audio entry ${entry} is ${st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO (named pipe)' : 'not a regular file'}, expected an audio file (or a command ending in |)`,
            file,
          )
        return readWhole(fd, st.size)
      } finally {
        closeSync(fd)
      }
    } catch (err) {
      if (err instanceof UttError) throw err
      const code = (err as NodeJS.ErrnoException).code
      throw new UttError(
        code === 'ENOENT' ? 'no-audio' : 'unreadable-audio',
        opts.utt,
        code === 'ENOENT'
          ? `audio file ${entry} does not exist`
          : `cannot read audio file ${entry}: ${(err as Error).message}`,
        file,
      )
    }
  }
  if (!opts.allowCommands) throw refused(opts.utt, entry, file)
  const cmd = entry.replace(/\|\s*$/, '')
  return new Promise((ok, fail) => {
    const p = spawn('sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    let err = ''
    p.stdout.on('data', (c: Buffer) => out.push(c))
    p.stderr.on('data', (c: Buffer) => {
      err = (err + c.toString()).slice(-STDERR_TAIL)
    })
    p.on('error', (e) => fail(new UttError('command-failed', opts.utt, `cannot run '${cmd}': ${e.message}`, file)))
    p.on('close', (code, signal) => {
      if (code === 0) return ok(Buffer.concat(out))
      const why = signal ? `was killed by ${signal}` : `exited with code ${code}`
      fail(
        new UttError(
          'command-failed',
          opts.utt,
          `wav.scp command '${cmd}' ${why}${err.trim() ? `: ${err.trim()}` : ''}`,
          file,
        ),
      )
    })
  })
}
