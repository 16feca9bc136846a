import { existsSync, statSync } from 'node:fs'
import { type RecordBatch, Schema } from 'apache-arrow'
import _ from 'highland'
import { KtpError, UttError } from '../../schemas/errors.js'
import { fingerprint } from '../../schemas/fingerprint.js'
import { META, readMeta } from '../../schemas/metadata.js'
import { numFrames, uttId } from '../../schemas/utterance.js'
import { openArrow } from './arrow-source.js'
import { type BatchSink, StdoutSink, openSink } from './output.js'
import { Progress } from './progress.js'
import { type Shard, inShard } from './shard.js'
import { type StopSignal, stoppable, stoppedBy } from './signals.js'
import { KTP_VERSION } from './version.js'

/**
 * The one runner every Arrow-producing stage goes through, so that every stage keeps the same
 * promises: keyed utterances, shard selection, resumption without recomputation, skipping of
 * up-to-date outputs, Kaldi-style error accounting ("done N, failed M") and exit codes
 * (0 all good, 1 some utterances failed, 2 fatal — the latter thrown as KtpError).
 */
export type Transform = (s: Highland.Stream<RecordBatch>) => Highland.Stream<RecordBatch>

export interface StageInput {
  /** For messages: a file name, "stdin", a data dir. */
  name: string
  schema: Schema
  /** The input's own fingerprint (from its metadata, or a content hash for raw corpora). */
  fingerprint: string
  stream: () => Highland.Stream<RecordBatch>
  /** Number of utterances when known cheaply (progress bar). */
  total?: number
  /**
   * No utterance id appears twice (the keys of a data dir's tables): the runner then need not
   * remember every id it has seen, only those not yet written.
   */
  uniqueIds?: boolean
}

export interface StageRun {
  stage: string
  /** Options that change the output's values (they enter the fingerprint and producer metadata). */
  options: Record<string, unknown>
  input: StageInput
  /** The output schema without ktp.producer/ktp.fingerprint (the runner adds them). */
  schema: Schema
  transform: Transform
  output: string
  /** Options that only select utterances (shard, lists): they key the build, not the values. */
  selection?: Record<string, unknown>
  /** Keep only utterances for which this holds (besides the shard). */
  select?: (utt: string) => boolean
  /** Pass the input's producer/fingerprint through unchanged (cat, merge: same values, fewer rows). */
  preserveMeta?: boolean
  shard?: Shard | null
  force?: boolean
  quiet?: boolean
  log?: (line: string) => void
}

export interface StageResult {
  exitCode: 0 | 1
  done: number
  resumed: number
  failed: number
  upToDate: boolean
  fingerprint: string
}

/** Open an Arrow input (file or `-`) as a StageInput of the accepted kinds. */
export async function arrowInput(src: string, accept: string[]): Promise<StageInput> {
  const a = await openArrow(src, accept)
  const fp = readMeta(a.schema).fingerprint ?? 'unknown'
  return { name: a.name, schema: a.schema, fingerprint: fp, stream: () => a.stream() }
}

/** Metadata key of the build key: what decides whether an existing output is up to date. */
export const BUILD_KEY = 'ktp.build'

/**
 * The output schema with provenance: `ktp.fingerprint` names the values (stage + value-changing
 * options + inputs), `ktp.build` names this exact output (fingerprint + selection), so a shard
 * and the whole share a fingerprint but are never mistaken for one another when up to date.
 */
export function outputSchema(
  run: Pick<StageRun, 'stage' | 'options' | 'schema' | 'preserveMeta'>,
  fp: string,
  build: string,
): Schema {
  const md = new Map(run.schema.metadata)
  if (!run.preserveMeta) {
    md.set(META.producer, JSON.stringify({ stage: run.stage, options: run.options, ktp_version: KTP_VERSION }))
  }
  md.set(META.fingerprint, fp)
  md.set(BUILD_KEY, build)
  return new Schema(run.schema.fields, md)
}

async function isUpToDate(path: string, build: string): Promise<boolean> {
  if (path === '-' || !existsSync(path) || !statSync(path).isFile() || existsSync(`${path}.partial`)) return false
  try {
    const a = await openArrow(path, [])
    await a.close()
    return a.schema.metadata.get(BUILD_KEY) === build
  } catch {
    return false
  }
}

/**
 * Pull a highland stream to its end, one value at a time, awaiting `onValue` between pulls.
 * `shouldStop` is asked before each pull; `interrupt`, once settled, also ends a pull that is
 * still waiting for its value (a stage blocked on a quiet stdin stops at a signal too).
 */
export function drain<T>(
  s: Highland.Stream<T>,
  onValue: (x: T) => Promise<void> | void,
  onError: (e: unknown) => boolean,
  shouldStop: () => boolean = () => false,
  interrupt?: Promise<unknown>,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let waiting = false
    let ended = false
    const end = () => {
      ended = true
      resolve()
    }
    interrupt?.then(() => {
      if (waiting && !ended) end()
    })
    const step = () => {
      if (shouldStop()) return end()
      waiting = true
      s.pull((err, x) => {
        waiting = false
        if (ended) return // interrupted while waiting: the value is dropped, not half-handled
        if (err) {
          if (onError(err)) return step()
          s.destroy()
          return reject(err)
        }
        if (x === _.nil) return end()
        Promise.resolve(onValue(x as T)).then(step, (e) => {
          s.destroy()
          reject(e)
        })
      })
    }
    step()
  })
}

export async function runStage(run: StageRun): Promise<StageResult> {
  const log = run.log ?? ((l: string) => process.stderr.write(`${l}\n`))
  const fp = run.preserveMeta ? run.input.fingerprint : fingerprint(run.stage, run.options, [run.input.fingerprint])
  const build = fingerprint(
    `${run.stage}:build`,
    { options: run.options, selection: run.selection ?? {}, shard: run.shard ?? null },
    [run.input.fingerprint],
  )
  const schema = outputSchema(run, fp, build)
  if (!run.force && (await isUpToDate(run.output, build))) {
    log(`ktp ${run.stage}: ${run.output} is up to date, nothing to do`)
    return { exitCode: 0, done: 0, resumed: 0, failed: 0, upToDate: true, fingerprint: fp }
  }
  const sink: BatchSink = openSink(run.output, schema, { fingerprint: build, log })
  const resumed = sink.done.size
  const progress = new Progress({ label: `ktp ${run.stage}`, total: run.input.total, quiet: run.quiet })

  // Input order defines output order; the same utterance twice is an error for the second.
  // With ids known unique, an id is kept only from its selection to its write: remembering all
  // of them grew the peak of a stage with the length of its input (~70 bytes an utterance).
  const unique = run.input.uniqueIds === true
  const ordOf = new Map<string, number>()
  let ord = 0
  const selected = run.input.stream().consume<RecordBatch>((err, x, push, next) => {
    if (err) {
      push(err)
      return next()
    }
    if (x === _.nil) return push(null, _.nil)
    const b = x as RecordBatch
    const utt = uttId(b)
    if (!unique && ordOf.has(utt)) {
      push(new UttError('duplicate-utt', utt, `utterance id appears twice in ${run.input.name}; the second is skipped`))
    } else {
      const o = ord++
      if (inShard(utt, run.shard ?? null) && (!run.select || run.select(utt)) && !sink.done.has(utt)) {
        ordOf.set(utt, o)
        push(null, b)
      } else if (!unique) ordOf.set(utt, o)
    }
    next()
  })

  const onSignal = (sig: StopSignal) =>
    log(`ktp ${run.stage}: ${sig} received, stopping; run the same command again to resume`)
  const stopped = await stoppable(onSignal, async (stop) => {
    try {
      await drain(
        run.transform(selected),
        async (b) => {
          const utt = uttId(b)
          const o = ordOf.get(utt)
          if (o === undefined)
            throw new KtpError('unknown-utt', `stage ${run.stage} produced utterance '${utt}' that is not in its input`)
          if (unique) ordOf.delete(utt)
          await sink.write(b, o)
          progress.tick(numFrames(b))
        },
        (err) => {
          if (!(err instanceof UttError)) return false
          if (unique) ordOf.delete(err.utt)
          progress.fail()
          log(`ktp ${run.stage}: WARNING ${err.message}`)
          return true
        },
        () => stop.signal !== null || (sink instanceof StdoutSink && sink.closed),
        stop.requested,
      )
    } catch (err) {
      progress.stop()
      sink.suspend()
      throw err
    }
    return stop.signal
  })
  progress.stop()
  if (stopped) {
    sink.suspend()
    throw stoppedBy(
      stopped,
      `ktp ${run.stage}: stopped by ${stopped}; ${progress.done + resumed} utterances are kept for the next run (the same command resumes)`,
    )
  }
  await sink.finish()
  const resumedMsg = resumed ? ` (${resumed} from an earlier run)` : ''
  log(`ktp ${run.stage}: done ${progress.done + resumed}${resumedMsg}, failed ${progress.failed}`)
  return {
    exitCode: progress.failed > 0 ? 1 : 0,
    done: progress.done + resumed,
    resumed,
    failed: progress.failed,
    upToDate: false,
    fingerprint: fp,
  }
}
