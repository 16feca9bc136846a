import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CLI, ROOT, ktp, tmp } from './helpers.js'
import { slurmClient, startSlurm } from './slurm-cluster.js'

/**
 * Issue 20 acceptance, on a live single-node Slurm started by the test (test/slurm-cluster.ts; the
 * Debian packages slurmctld, slurmd and munge, which .ci/run installs): the fsdd recipe runs to
 * the end through sbatch, its results table equals the local executor's (same seeds, same
 * numbers), a job killed with scancel mid-run fails its step (with its job id and log) and the
 * rerun completes it, and a third run finds everything up to date.
 *
 * The configuration is the quick one shrunk to fit CI: 12 recordings per speaker and one epoch of
 * every training phase (the `--set`s below). The numbers are then poor, but this test is about
 * the two executors giving the same numbers, not about the numbers.
 */
const TINY = [
  'run',
  'fsdd',
  '--quick',
  ...['--set', 'connect.maxPerSpeaker=12', '--set', 'align.maxEpochs=1'],
  ...['--set', 'teacher.maxEpochs=1', '--set', 'teacher.minEpochs=1', '--set', 'teacher.rbmEpochs=1'],
  ...['--set', 'student.maxEpochs=1', '--set', 'student.minEpochs=1'],
  ...['--set', 'student.ktMaxEpochs=1', '--set', 'student.ktMinEpochs=1'],
]
// two runs of the recipe and a rerun: longer than the suite's 10-minute default per file
t.setTimeout(40 * 60_000)

/** The job to kill: a training step, long enough to be caught running. */
const VICTIM = 'lstm-baseline.s1'
const VICTIM_RE = VICTIM.replace('.', '\\.')

const table = (stdout: string) => stdout.split('\n').filter((l) => l.startsWith('|'))

interface Run {
  /** What the run has written to stderr so far (it grows while the run goes on). */
  stderr: () => string
  done: Promise<{ code: number | null; stdout: string; stderr: string }>
}

function runAsync(args: string[], env: NodeJS.ProcessEnv): Run {
  const c = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env })
  let stdout = ''
  let stderr = ''
  c.stdout.on('data', (d: Buffer) => (stdout += d))
  c.stderr.on('data', (d: Buffer) => (stderr += d))
  return {
    stderr: () => stderr,
    done: new Promise((resolve) => c.on('close', (code) => resolve({ code, stdout, stderr }))),
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Wait until `ok()` holds (checked every `ms`), at most `seconds`; whether it did. */
async function until(ok: () => boolean, seconds: number, ms = 100): Promise<boolean> {
  for (const end = Date.now() + seconds * 1000; Date.now() < end; await sleep(ms)) if (ok()) return true
  return ok()
}

t.test(
  'ktp run fsdd --executor slurm on a live Slurm: same table as local, scancel then resume, then up to date',
  async (t) => {
    const slurm = await startSlurm()
    if (typeof slurm === 'string') {
      t.plan(0, `skipped: no live Slurm here: ${slurm}`)
      return
    }
    t.teardown(() => slurm.stop())
    // The test node has 2 CPUs and the machine's memory: modest requests, a quick look at the queue.
    // Sharding is a per-run choice that changes no step's key: the first run submits every step as
    // one job (half the jobs, each a node start-up or two), the rerun splits its infer steps into
    // job arrays and merges, so the numbers compared below also come through arrays.
    const cfgDir = tmp('ktp-slurm-cfg-')
    const slurmCfg = (shards: number) => {
      const path = join(cfgDir, `slurm-${shards}.json`)
      writeFileSync(path, JSON.stringify({ poll: 1, shards, resources: { default: { mem: '1G' } } }))
      return path
    }
    const local = tmp('ktp-live-local-')
    const out = tmp('ktp-live-slurm-')
    const slurmArgs = (shards: number) => [
      ...TINY,
      ...['--out', out, '--executor', 'slurm', '--slurm-config', slurmCfg(shards)],
    ]

    // the local reference (the executor every other test uses)
    const l = ktp([...TINY, '--out', local, '--jobs', '2'])
    t.equal(l.code, 0, l.stderr)

    // First slurm run: kill the victim's job once its command runs. Its job id is in the run's own
    // "submitted" line; its step log appears when the job has started the step's ktp command (a
    // file check, no squeue polling: a squeue every 200 ms cost more CPU than some steps).
    const first = runAsync(slurmArgs(1), slurm.env)
    const submitted = new RegExp(`${VICTIM_RE}\\s+submitted: job (\\d+) \\(`)
    const stepLog = join(out, 'log', `${VICTIM}.log`)
    let killed = ''
    if (await until(() => submitted.test(first.stderr()) && existsSync(stepLog), 1800)) {
      killed = submitted.exec(first.stderr())![1]
      const state = slurmClient(slurm, 'squeue', ['-h', '-j', killed, '-o', '%T']).trim()
      t.equal(state, 'RUNNING', `job ${killed} (${VICTIM}) runs when it is cancelled`)
      slurmClient(slurm, 'scancel', [killed])
    }
    const r1 = await first.done
    t.ok(killed, `cancelled job ${killed} (${VICTIM}) while it ran`)
    t.equal(r1.code, 1, 'the run fails')
    t.match(r1.stderr, new RegExp(`${VICTIM_RE}\\s+FAILED: job ${killed} CANCELLED`), 'step, job id, state')
    t.match(r1.stderr, /post-lstm-baseline\.s1-dev\s+skipped \(lstm-baseline\.s1 failed\)/, 'its dependents do not run')
    t.notOk(existsSync(join(out, '.ktp-stamps', `${VICTIM}.json`)), 'no stamp for the cancelled step')
    t.notOk(existsSync(join(out, 'exp', VICTIM, 'ktp.json')), 'no whole-looking model either')
    t.ok(existsSync(join(out, '.ktp-stamps', 'dnn.s1.json')), 'steps that do not depend on it finished')

    // the rerun submits only what is stale (its infer steps as arrays and merges) and completes
    const r2 = await runAsync(slurmArgs(2), slurm.env).done
    t.equal(r2.code, 0, r2.stderr)
    t.match(r2.stderr, /features-train\s+up to date/)
    t.match(r2.stderr, new RegExp(`${VICTIM_RE}\\s+submitted: job \\d+ \\(never ran\\)`))
    for (const split of ['dev', 'test'])
      t.match(
        r2.stderr,
        new RegExp(`post-${VICTIM_RE}-${split}\\s+submitted: array \\d+, merge \\d+ \\(${VICTIM_RE} runs first\\)`),
        `post-${VICTIM}-${split} as a job array and its merge`,
      )
    t.notMatch(r2.stderr, /dnn\.s1\s+submitted/, 'a finished teacher is not resubmitted')
    t.ok(table(r2.stdout).length >= 9, 'the results table')
    t.same(table(r2.stdout), table(l.stdout.toString()), 'same numbers as the local executor')
    t.same(
      JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).systems,
      JSON.parse(readFileSync(join(local, 'results.json'), 'utf8')).systems,
      'results.json too',
    )

    // and again: nothing to submit
    const r3 = await runAsync(slurmArgs(2), slurm.env).done
    t.equal(r3.code, 0, r3.stderr)
    t.match(r3.stderr, /everything is up to date, nothing to do/)
    t.notMatch(r3.stderr, /submitted/)
  },
)
