import { existsSync, realpathSync, statSync, type Stats } from 'node:fs'
import { basename, dirname, join, resolve, sep } from 'node:path'
import { KtpError } from '../../schemas/errors.js'

/**
 * ktp never overwrites an input. Every command's arguments pass through here before it runs:
 * an output (`-o/--output`, `--*-out`) that is the same file as one of the command's inputs
 * (compared by device and inode, so another spelling, a symlink or a hard link is caught too), or
 * that lies inside a model directory the command reads (`ktp infer --model m … -o m/params.bin`),
 * is refused before anything is read or written. Without this, `ktp splice x.arrow -o x.arrow`
 * replaced its input and spliced again on every rerun.
 *
 * Every argument other than the outputs counts as a possible input: a value that names no
 * existing file cannot clash, so options that are not paths are harmless. A command that reads a
 * file whole before it writes its replacement atomically may allow exactly that
 * (`hmm-update --hmm h.json -o h.json`) by listing the option in `mayOverwrite`.
 */

/** Output arguments: `output` (-o) and any `…Out` option (`--ctm-out`). */
function isOutputKey(key: string): boolean {
  return key === 'output' || key === 'o' || /Out$|-out$/.test(key)
}

function flag(key: string): string {
  if (key === 'output' || key === 'o') return '-o'
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`
}

function camel(key: string): string {
  return key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())
}

function statOf(path: string): Stats | null {
  try {
    return statSync(path)
  } catch {
    return null
  }
}

/** The real path of `path`, which may not exist yet: its deepest existing ancestor, resolved, plus the rest. */
function realish(path: string): string {
  const abs = resolve(path)
  let head = abs
  const rest: string[] = []
  while (!existsSync(head)) {
    const up = dirname(head)
    if (up === head) return abs
    rest.unshift(basename(head))
    head = up
  }
  try {
    return join(realpathSync(head), ...rest)
  } catch {
    return abs
  }
}

/** A ktp model directory (`ktp.json` marks one; see stages/train/model-store.ts). */
function isModelDir(path: string, st: Stats): boolean {
  return st.isDirectory() && existsSync(join(path, 'ktp.json'))
}

function strings(v: unknown): string[] {
  if (typeof v === 'string') return [v]
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string')
  return []
}

export interface GuardOptions {
  /** Positional argument names (named by value in messages, not as options). */
  positionals?: readonly string[]
  /** Options that may name the output too (read whole before the output replaces them atomically). */
  mayOverwrite?: readonly string[]
}

export function refuseOverwritingInputs(argv: Record<string, unknown>, opts: GuardOptions = {}): void {
  const { mayOverwrite = [], positionals = [] } = opts
  const named = (key: string, p: string) => (positionals.includes(key) ? p : `${flag(key)} ${p}`)
  const allowed = new Set(mayOverwrite.map(camel))
  const outputs = new Map<string, string>()
  const inputs: [key: string, path: string][] = []
  for (const [key, v] of Object.entries(argv)) {
    if (key === '_' || key === '$0') continue
    if (isOutputKey(key)) {
      for (const p of strings(v)) if (p !== '-' && p !== '') outputs.set(p, key)
      continue
    }
    if (allowed.has(camel(key))) continue
    for (const p of strings(v)) if (p !== '-' && p !== '') inputs.push([key, p])
  }
  if (outputs.size === 0) return
  const seen = new Set<string>()
  const stats: [key: string, path: string, st: Stats][] = []
  for (const [key, p] of inputs) {
    if (seen.has(p)) continue // yargs lists each option under its kebab and camel names
    seen.add(p)
    const st = statOf(p)
    if (st) stats.push([key, p, st])
  }
  for (const [out, outKey] of outputs) {
    const o = statOf(out)
    for (const [key, p, st] of stats) {
      if (o?.isFile() && st.isFile() && o.dev === st.dev && o.ino === st.ino) {
        throw new KtpError(
          'output-is-input',
          `${flag(outKey)} ${out} is also an input (${named(key, p)}): ktp never overwrites an input; write to another file`,
        )
      }
      if (isModelDir(p, st)) {
        const dir = realish(p)
        const target = realish(out)
        if (target === dir || target.startsWith(dir + sep)) {
          throw new KtpError(
            'output-in-model',
            `${flag(outKey)} ${out} lies inside the model directory that this command reads (${named(key, p)}): write elsewhere`,
          )
        }
      }
    }
  }
}
