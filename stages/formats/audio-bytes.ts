import { spawn } from 'node:child_process'
import { readFileSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import { UttError } from '../../schemas/errors.js'
import { isCommand } from './datadir-io.js'

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
      const path = resolve(entry)
      const st = statSync(path)
      // reading a FIFO blocks until some process writes to it, a directory fails with EISDIR
      if (!st.isFile())
        throw new UttError(
          'not-a-file',
          opts.utt,
          `audio entry ${entry} is ${st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO (named pipe)' : 'not a regular file'}, expected an audio file (or a command ending in |)`,
          file,
        )
      return readFileSync(path)
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
