import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { hostname, totalmem } from 'node:os'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { tmp } from './helpers.js'

/**
 * A live single-node Slurm for tests: munged, slurmctld and slurmd (the Debian packages) started
 * as root in a temporary directory with a generated slurm.conf: this host only, one node with 2
 * CPUs, no cgroups (proctrack/linuxproc), no accounting. Clients find it through SLURM_CONF in
 * `env`. `startSlurm` returns the reason instead when it cannot (not installed, not root, a
 * daemon that does not come up), so the test can say why it skips.
 */
export interface LiveSlurm {
  dir: string
  /** The environment for ktp and the Slurm client commands (SLURM_CONF). */
  env: NodeJS.ProcessEnv
  stop(): Promise<void>
}

const DAEMONS = ['munged', 'slurmctld', 'slurmd']
const CLIENTS = ['sbatch', 'squeue', 'scancel', 'sinfo']

function which(cmd: string): string | null {
  for (const d of ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/sbin', '/usr/local/bin'])
    if (existsSync(join(d, cmd))) return join(d, cmd)
  return null
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

const lastLines = (path: string, n = 4) =>
  existsSync(path) ? readFileSync(path, 'utf8').trim().split('\n').slice(-n).join(' | ') : '(no log)'

export async function startSlurm(): Promise<LiveSlurm | string> {
  const missing = [...DAEMONS, ...CLIENTS].filter((c) => !which(c))
  if (missing.length)
    return `Slurm is not installed (missing ${missing.join(', ')}): apt-get install -y slurmctld slurmd munge slurm-client`
  if (process.getuid?.() !== 0) return 'the live Slurm test starts slurmctld/slurmd/munged as root; not running as root'
  const dir = tmp('ktp-slurm-')
  const node = hostname().split('.')[0]
  const [ctldPort, slurmdPort] = [await freePort(), await freePort()]
  for (const d of ['state', 'spool', 'munge']) mkdirSync(join(dir, d))
  chmodSync(join(dir, 'munge'), 0o700)
  const key = join(dir, 'munge', 'munge.key')
  writeFileSync(key, randomBytes(1024), { mode: 0o400 })
  const socket = join(dir, 'munge', 'munge.socket')
  const memMb = Math.floor((totalmem() / 2 ** 20) * 0.8)
  const conf = join(dir, 'slurm.conf')
  writeFileSync(
    conf,
    [
      'ClusterName=ktptest',
      `SlurmctldHost=${node}(127.0.0.1)`,
      'SlurmUser=root',
      'SlurmdUser=root',
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${slurmdPort}`,
      'AuthType=auth/munge',
      'CredType=cred/munge',
      `AuthInfo=socket=${socket}`,
      `StateSaveLocation=${join(dir, 'state')}`,
      `SlurmdSpoolDir=${join(dir, 'spool')}`,
      `SlurmctldPidFile=${join(dir, 'slurmctld.pid')}`,
      `SlurmdPidFile=${join(dir, 'slurmd.pid')}`,
      `SlurmctldLogFile=${join(dir, 'slurmctld.log')}`,
      `SlurmdLogFile=${join(dir, 'slurmd.log')}`,
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'JobAcctGatherType=jobacct_gather/none',
      'AccountingStorageType=accounting_storage/none',
      'JobCompType=jobcomp/none',
      'SchedulerType=sched/builtin',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_CPU',
      'ReturnToService=2',
      'MpiDefault=none',
      'SwitchType=switch/none',
      'SlurmctldTimeout=30',
      'SlurmdTimeout=30',
      'InactiveLimit=0',
      'KillWait=5',
      'MinJobAge=300',
      `NodeName=${node} NodeAddr=127.0.0.1 CPUs=2 RealMemory=${memMb} State=UNKNOWN`,
      `PartitionName=debug Nodes=${node} Default=YES MaxTime=INFINITE State=UP`,
      '',
    ].join('\n'),
  )
  const env = { ...process.env, SLURM_CONF: conf }
  const children: ChildProcess[] = []
  // A test killed from outside (tap's per-file timeout sends SIGTERM) never reaches its teardown:
  // cancel the jobs and kill the daemons on the way out, or they outlive the test and keep running
  // its jobs (seen: a timed-out run left munged, slurmctld and slurmd running).
  const killNow = () => {
    spawnSync(which('scancel')!, ['--user=root'], { env, stdio: 'ignore' })
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  }
  const onSignal = (sig: NodeJS.Signals) => {
    killNow()
    // the default action (dying of the signal) unless someone else handles it
    if (process.listenerCount(sig) === 0) process.kill(process.pid, sig)
  }
  const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const
  process.once('exit', killNow)
  for (const sig of SIGNALS) process.once(sig, onSignal)
  const stop = async () => {
    process.off('exit', killNow)
    for (const sig of SIGNALS) process.off(sig, onSignal)
    spawnSync(which('scancel')!, ['--user=root'], { env, stdio: 'ignore' })
    for (const c of children.reverse()) {
      c.kill('SIGTERM')
      if (c.exitCode === null) await new Promise((r) => setTimeout(r, 100))
    }
    await Promise.all(
      children.map((c) =>
        c.exitCode !== null || c.signalCode !== null
          ? null
          : new Promise((r) => {
              const t = setTimeout(() => {
                c.kill('SIGKILL')
                r(null)
              }, 5000)
              c.once('exit', () => {
                clearTimeout(t)
                r(null)
              })
            }),
      ),
    )
    rmSync(dir, { recursive: true, force: true })
  }
  const start = (cmd: string, args: string[], log: string) => {
    const c = spawn(which(cmd)!, args, { env, stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    c.stderr?.on('data', (d: Buffer) => (err += d.toString()))
    c.on('exit', () => writeFileSync(join(dir, `${log}.stderr`), err))
    children.push(c)
    return c
  }
  start(
    'munged',
    [
      '-F',
      '--force',
      `--socket=${socket}`,
      `--key-file=${key}`,
      `--pid-file=${join(dir, 'munge', 'munged.pid')}`,
      `--log-file=${join(dir, 'munge', 'munged.log')}`,
      `--seed-file=${join(dir, 'munge', 'munged.seed')}`,
    ],
    'munged',
  )
  const wait = async (ok: () => boolean, seconds: number) => {
    for (let i = 0; i < seconds * 5; i++) {
      if (ok()) return true
      await new Promise((r) => setTimeout(r, 200))
    }
    return false
  }
  if (!(await wait(() => existsSync(socket), 10))) {
    await stop()
    return `munged did not start: ${lastLines(join(dir, 'munge', 'munged.log'))}`
  }
  start('slurmctld', ['-D', '-c', '-i', '-f', conf], 'slurmctld')
  start('slurmd', ['-D', '-f', conf, '-N', node], 'slurmd')
  const idle = () => {
    const r = spawnSync(which('sinfo')!, ['-h', '-o', '%T'], { env, encoding: 'utf8' })
    return r.status === 0 && /^idle/m.test(r.stdout)
  }
  if (!(await wait(idle, 30))) {
    const why = `slurmctld: ${lastLines(join(dir, 'slurmctld.log'), 2)}; slurmd: ${lastLines(join(dir, 'slurmd.log'), 2)}`
    await stop()
    return `the Slurm daemons did not bring the node up within 30 s (${why})`
  }
  return { dir, env, stop }
}

/** Run a Slurm client command against the live cluster. */
export function slurmClient(s: LiveSlurm, cmd: string, args: string[]): string {
  return execFileSync(which(cmd) ?? cmd, args, { env: s.env, encoding: 'utf8' })
}
