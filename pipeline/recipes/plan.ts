import { type ChildProcess, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  closeSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { KtpError } from '../../schemas/errors.js'
import { canonicalJson } from '../../schemas/fingerprint.js'
import { writeFileAtomic } from '../io/atomic-file.js'
import { openArrow } from '../io/arrow-source.js'

/**
 * The plan of a recipe run and the executor that carries it out. A recipe is a DAG of steps, each a `ktp` command (run as a child process, so
 * a step behaves exactly as a user's shell command) or an in-process function, with declared
 * inputs and outputs. A step runs only when it is stale, like make but keyed by content rather
 * than by time: its key hashes its command and the fingerprints of its inputs (an Arrow file's
 * `ktp.fingerprint`, any other file's bytes), and a stamp with that key is written only after the
 * step succeeded. So an unchanged rerun does nothing, a changed option reruns that step and only
 * what depends on its changed output, and a step killed midway simply runs again (resuming its
 * own partial output).
 */
export interface Step {
  name: string
  /** `ktp` arguments (without `ktp`), or a function run in-process. */
  cmd?: string[]
  fn?: () => Promise<void>
  /** With `fn`: what the function computes from (options, code version) — part of the key. */
  config?: unknown
  inputs: string[]
  outputs: string[]
  /** Save the command's stdout here (e.g. a score report). */
  stdoutTo?: string
  /** Exit code 1 (some utterances failed) is acceptable for this step. */
  allowPartial?: boolean
  /**
   * Appended to `cmd` when the step runs, not part of its key: how a command that checkpoints
   * continues an interrupted run (`--resume` for the training commands).
   */
  resumeFlag?: string
  /**
   * The command takes `--shard i/N` and its parts join with `ktp merge` (features, infer): a
   * cluster executor may run it as N jobs and a merge. The local executor runs it whole.
   */
  shardable?: boolean
  /** What a cluster job of this step asks for (the Slurm executor's defaults fill the rest). */
  resources?: { cpus?: number; mem?: string; time?: string }
}

export interface Recipe {
  name: string
  steps: Step[]
}

export interface RunRecipeOptions {
  out: string
  dryRun?: boolean
  from?: string
  until?: string
  /** Steps to run at once (independent steps only). */
  jobs?: number
  log?: (line: string) => void
  cli?: string
  /** Run this one step only (a cluster job runs one step of the plan). */
  only?: string
  /** With `only`: run part i of n of a shardable step (`--shard i/n`), no stamp (the merge writes it). */
  shardTask?: { index: number; count: number }
  /** With `only`: join the n parts of a shardable step into its output, then stamp it. */
  mergeShards?: number
}

export interface StepOutcome {
  name: string
  /** `submitted`: handed to a cluster that was not waited for (`--no-wait`). */
  state: 'up-to-date' | 'ran' | 'would-run' | 'skipped' | 'failed' | 'submitted'
  reason?: string
  seconds?: number
}

/** The compiled CLI, whether this module runs from dist/ or from source (tests). */
const HERE = dirname(fileURLToPath(import.meta.url))
export const CLI = import.meta.url.endsWith('.ts')
  ? join(HERE, '..', '..', 'dist', 'pipeline', 'cli', 'main.js')
  : join(HERE, '..', 'cli', 'main.js')

function hashPath(p: string, h: ReturnType<typeof createHash>): void {
  if (!existsSync(p)) {
    h.update(`missing:${p}`)
    return
  }
  const st = statSync(p)
  if (st.isDirectory()) {
    for (const name of readdirSync(p).sort()) {
      if (name.startsWith('.') || name.endsWith('.partial')) continue
      h.update(`dir-entry:${name}\n`)
      hashPath(join(p, name), h)
    }
    return
  }
  h.update(readFileSync(p))
}

/** What an input contributes to a key: an Arrow file's fingerprint, else its content hash. */
export async function inputFingerprint(p: string): Promise<string> {
  if (p.endsWith('.arrow') && existsSync(p)) {
    try {
      const a = await openArrow(p, [])
      await a.close()
      const fp = a.schema.metadata.get('ktp.fingerprint')
      if (fp) return `arrow:${fp}`
    } catch {
      /* fall through to a content hash */
    }
  }
  const h = createHash('sha256')
  hashPath(p, h)
  return `bytes:${h.digest('hex').slice(0, 32)}`
}

/** Topological order of steps by their file dependencies (declaration order among equals). */
export function planOrder(recipe: Recipe): Step[] {
  const producer = new Map<string, Step>()
  for (const s of recipe.steps) {
    for (const o of s.outputs) {
      if (producer.has(o))
        throw new KtpError(
          'recipe',
          `recipe ${recipe.name}: '${o}' is an output of both ${producer.get(o)!.name} and ${s.name}`,
        )
      producer.set(o, s)
    }
  }
  const names = new Set<string>()
  for (const s of recipe.steps) {
    if (names.has(s.name)) throw new KtpError('recipe', `recipe ${recipe.name}: two steps are named '${s.name}'`)
    names.add(s.name)
  }
  const order: Step[] = []
  const state = new Map<string, 'visiting' | 'done'>()
  const visit = (s: Step, path: string[]) => {
    if (state.get(s.name) === 'done') return
    if (state.get(s.name) === 'visiting')
      throw new KtpError('recipe', `recipe ${recipe.name}: cycle ${[...path, s.name].join(' → ')}`)
    state.set(s.name, 'visiting')
    for (const i of s.inputs) {
      const p = producer.get(i)
      if (p && p !== s) visit(p, [...path, s.name])
    }
    state.set(s.name, 'done')
    order.push(s)
  }
  for (const s of recipe.steps) visit(s, [])
  return order
}

export function dependsOn(recipe: Recipe, step: Step): Set<string> {
  const producer = new Map<string, Step>()
  for (const s of recipe.steps) for (const o of s.outputs) producer.set(o, s)
  return new Set(step.inputs.map((i) => producer.get(i)?.name).filter((n): n is string => !!n && n !== step.name))
}

export async function stepKey(s: Step): Promise<string> {
  const inputs: Record<string, string> = {}
  for (const i of s.inputs) inputs[i] = await inputFingerprint(i)
  return createHash('sha256')
    .update(canonicalJson({ cmd: s.cmd ?? null, config: s.config ?? null, inputs, stdoutTo: s.stdoutTo ?? null }))
    .digest('hex')
    .slice(0, 32)
}

/** The steps' child processes under way, and the signal that stopped the run (no new step starts). */
const children = new Set<ChildProcess>()
let stoppedBy: NodeJS.Signals | null = null

/**
 * Stop the run: pass `sig` on to every step under way (each stops at its own boundary, keeping its
 * checkpoint or finished utterances) and start no other. The children are in their own process
 * groups, so a Ctrl-C at the terminal reaches them once, from here, not twice. `null` clears
 * the stop (a new run in the same process).
 */
export function stopChildren(sig: NodeJS.Signals | null): void {
  stoppedBy = sig
  if (sig) for (const c of children) c.kill(sig)
}

/** The signal that stopped this run (no step may start any more), or null. */
export function stopRequested(): NodeJS.Signals | null {
  return stoppedBy
}

/** Run a step's `ktp` command as a child process, its stderr (and stdout unless saved) to `logPath`. */
export function runChild(cli: string, s: Step, logPath: string): Promise<number> {
  if (stoppedBy) return Promise.resolve(stoppedBy === 'SIGTERM' ? 143 : 130)
  return new Promise((resolve, reject) => {
    mkdirSync(dirname(logPath), { recursive: true })
    const log = createWriteStream(logPath)
    // a step killed midway continues from its checkpoint
    const args = s.resumeFlag ? [...s.cmd!, s.resumeFlag] : s.cmd!
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    children.add(child)
    const chunks: Buffer[] = []
    child.stdout.on('data', (d: Buffer) => (s.stdoutTo ? chunks.push(d) : log.write(d)))
    child.stderr.on('data', (d: Buffer) => log.write(d))
    child.on('error', reject)
    child.on('close', (code, signal) => {
      children.delete(child)
      log.end()
      if (s.stdoutTo && (code === 0 || (code === 1 && s.allowPartial)))
        writeFileAtomic(s.stdoutTo, Buffer.concat(chunks))
      resolve(code ?? (signal === 'SIGTERM' ? 143 : signal === 'SIGINT' ? 130 : 2))
    })
  })
}

/** Is there a live process with this pid (on this machine)? */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * One runner per output directory: two runs of a recipe into one `--out` would run the same steps
 * at once and race on their outputs (a step's partial output merged and removed under the other).
 * The lock is a file created with O_EXCL holding the owner's pid; a lock whose owner is gone (a
 * killed run) is taken over. Dry runs change nothing and take no lock.
 */
export function lockOutDir(out: string): () => void {
  mkdirSync(out, { recursive: true })
  const path = join(out, '.ktp-lock')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx')
      writeSync(fd, `${process.pid}\n`)
      closeSync(fd)
      return () => rmSync(path, { force: true })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const pid = Number.parseInt(readFileSync(path, 'utf8'), 10)
      if (Number.isInteger(pid) && alive(pid)) {
        throw new KtpError(
          'locked',
          `${out} is in use by another ktp run (pid ${pid}); wait for it, or stop it and run again (a killed run resumes)`,
        )
      }
      rmSync(path, { force: true }) // the owner is gone: take over
    }
  }
  throw new KtpError('locked', `${out}: could not take the lock ${path}`)
}

/** One step of a plan: the steps it waits for, and whether `--from/--until/--only` select it. */
export interface PlannedStep {
  step: Step
  deps: string[]
  selected: boolean
}

/** What an executor runs: the recipe's steps in dependency order, under an output directory. */
export interface Plan {
  recipe: Recipe
  out: string
  stampDir: string
  steps: PlannedStep[]
}

/**
 * Something that carries out a plan: the local executor runs the stale steps as child processes
 * on this machine; a cluster executor submits them as jobs. Either way the stamps written after a
 * step succeeded are the only record of what is done.
 */
export interface Executor {
  run(plan: Plan, o: RunRecipeOptions): Promise<StepOutcome[]>
}

export function makePlan(recipe: Recipe, o: Pick<RunRecipeOptions, 'out' | 'from' | 'until' | 'only'>): Plan {
  const order = planOrder(recipe)
  const idx = (n: string) => {
    const i = order.findIndex((s) => s.name === n)
    if (i < 0)
      throw new KtpError(
        'usage',
        `no step '${n}' in recipe ${recipe.name}; steps: ${order.map((s) => s.name).join(', ')}`,
      )
    return i
  }
  const fromI = o.from ? idx(o.from) : 0
  const untilI = o.until ? idx(o.until) : order.length - 1
  const onlyI = o.only ? idx(o.only) : -1
  return {
    recipe,
    out: o.out,
    stampDir: join(o.out, '.ktp-stamps'),
    steps: order.map((step, i) => ({
      step,
      deps: [...dependsOn(recipe, step)],
      selected: onlyI >= 0 ? i === onlyI : i >= fromI && i <= untilI,
    })),
  }
}

export function stampPath(plan: Plan, s: Step): string {
  return join(plan.stampDir, `${s.name}.json`)
}

/** Why a step must run ('' when it is up to date), and its current key. */
export async function staleReason(plan: Plan, s: Step): Promise<{ reason: string; key: string }> {
  const path = stampPath(plan, s)
  const key = await stepKey(s)
  let reason = ''
  if (!existsSync(path)) reason = 'never ran'
  else if (JSON.parse(readFileSync(path, 'utf8')).key !== key) reason = 'command or inputs changed'
  else if (s.outputs.some((p) => !existsSync(p))) reason = 'an output is missing'
  return { reason, key }
}

/** Record that a step succeeded with this key: written last, atomically, so it never claims a partial output. */
export function writeStamp(plan: Plan, s: Step, key: string, seconds: number): void {
  writeFileAtomic(
    stampPath(plan, s),
    JSON.stringify({ key, step: s.name, cmd: s.cmd ?? null, at: new Date().toISOString(), seconds }),
  )
}
