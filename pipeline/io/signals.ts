import { KtpError } from '../../schemas/errors.js'

/**
 * SIGINT and SIGTERM for every ktp command, in one place (issue 17: "honoured everywhere").
 *
 * - The command handler guards the whole run of a command (`guardCommand`).
 * - Work that can stop at a boundary and keep what it finished (a stage's utterances, a training
 *   step, a recipe's child processes) runs inside `stoppable`: the first signal is a request that
 *   it answers by stopping there and throwing `stoppedBy(...)`.
 * - Anywhere else, or on a second signal, the command stops at once: `onAbort` callbacks remove
 *   what is not whole (temp files and directories), a one-line message says so, and the exit code
 *   is the shell's for a process the signal killed (128 + its number). Every file ktp writes under
 *   its final name is renamed there whole, so stopping at once never leaves a partial output.
 *
 * Without a guarded command (library use) a signal outside `stoppable` has its default action.
 */
export type StopSignal = 'SIGINT' | 'SIGTERM'

const EXIT_CODE: Record<StopSignal, number> = { SIGINT: 130, SIGTERM: 143 }

/** The KtpError code of a stop by `sig`; `exitCodeOf` maps it back to 130 or 143. */
export function stopCode(sig: StopSignal): 'interrupted' | 'terminated' {
  return sig === 'SIGTERM' ? 'terminated' : 'interrupted'
}

/** 130 for 'interrupted', 143 for 'terminated', null for any other KtpError code. */
export function exitCodeOf(code: string): number | null {
  return code === 'interrupted' ? EXIT_CODE.SIGINT : code === 'terminated' ? EXIT_CODE.SIGTERM : null
}

/** The error a stopped piece of work throws: one line, saying what is kept and how to continue. */
export function stoppedBy(sig: StopSignal, message: string): KtpError {
  return new KtpError(stopCode(sig), message)
}

/** What `stoppable` work sees: the signal that asked it to stop (null: none yet), and a promise of it. */
export interface StopRequest {
  readonly signal: StopSignal | null
  readonly requested: Promise<StopSignal>
}

interface Scope {
  signal: StopSignal | null
  onRequest: (sig: StopSignal) => void
  resolve: (sig: StopSignal) => void
}

const scopes: Scope[] = []
const aborters = new Set<() => void>()
let guarded: string | null = null
let listening = 0

function onSignal(sig: StopSignal): void {
  const scope = scopes.at(-1)
  if (scope && scope.signal === null) {
    scope.signal = sig
    scope.onRequest(sig)
    scope.resolve(sig)
    return
  }
  abortNow(sig)
}

function abortNow(sig: StopSignal): void {
  for (const abort of aborters) {
    try {
      abort()
    } catch {
      /* the stop itself must not fail on a clean-up */
    }
  }
  if (guarded === null) {
    // library use: the signal's default action (the process ends as if no handler were there)
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
    listening = 0
    process.kill(process.pid, sig)
    return
  }
  process.stderr.write(
    `ktp: error: ktp ${guarded}: stopped by ${sig}; no partial output is left (every file is renamed into place whole): run the same command again\n`,
  )
  process.exit(EXIT_CODE[sig])
}

function listen(): () => void {
  if (listening++ === 0) {
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  }
  let done = false
  return () => {
    if (done) return
    done = true
    if (--listening <= 0) {
      listening = 0
      process.removeListener('SIGINT', onSignal)
      process.removeListener('SIGTERM', onSignal)
    }
  }
}

/**
 * Guard one command's run (the CLI's command handler does it). `release` returns the exit code of
 * the first signal received (or null): the caller ends the process with it, since a stopped
 * command may leave handles (stdin, a worker) that would keep Node running.
 */
export function guardCommand(name: string): { release: () => void; received: () => number | null } {
  guarded = name
  let first: StopSignal | null = null
  const note = (sig: StopSignal) => {
    first ??= sig
  }
  // registered before onSignal, so a signal is noted even when it stops the command at once
  process.on('SIGINT', note)
  process.on('SIGTERM', note)
  const stop = listen()
  return {
    release: () => {
      stop()
      process.removeListener('SIGINT', note)
      process.removeListener('SIGTERM', note)
      guarded = null
    },
    received: () => (first ? EXIT_CODE[first] : null),
  }
}

/**
 * Run `work` with the first SIGINT/SIGTERM turned into a request to stop at its next boundary
 * (`onRequest` is told at once, e.g. to log it or to pass the signal on to child processes). The
 * work then throws `stoppedBy(...)`. A second signal stops the process at once.
 */
export async function stoppable<T>(
  onRequest: (sig: StopSignal) => void,
  work: (stop: StopRequest) => Promise<T>,
): Promise<T> {
  let resolve!: (sig: StopSignal) => void
  const requested = new Promise<StopSignal>((r) => (resolve = r))
  const scope: Scope = { signal: null, onRequest, resolve }
  const stop = listen()
  scopes.push(scope)
  try {
    return await work({
      get signal() {
        return scope.signal
      },
      requested,
    })
  } finally {
    scopes.splice(scopes.lastIndexOf(scope), 1)
    stop()
  }
}

/** Register a clean-up for a stop at once (a temp file or directory that is not whole); returns its removal. */
export function onAbort(cleanup: () => void): () => void {
  aborters.add(cleanup)
  return () => aborters.delete(cleanup)
}

/**
 * Let the event loop deliver a pending signal. A training step or an RBM update is all
 * microtasks, and a loop of them would never see one.
 */
export function letSignalsIn(): Promise<void> {
  return new Promise((r) => setImmediate(r))
}
