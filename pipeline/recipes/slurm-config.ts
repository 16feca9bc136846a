import { z } from 'zod'
import { KtpError } from '../../schemas/errors.js'
import { readConfigFile } from './config.js'
import type { Step } from './plan.js'

/**
 * How a recipe's steps become Slurm jobs: resources per step (by step name, else by `ktp`
 * command, else the defaults below), a partition, extra `sbatch` flags for every job, and how
 * many array tasks a shardable step (features, infer) is split into.
 */
const resources = z.strictObject({
  cpus: z.number().int().min(1).optional().describe('--cpus-per-task'),
  mem: z
    .string()
    .regex(/^\d+[KMGT]?$/, 'a Slurm memory size such as 4G')
    .optional()
    .describe('--mem'),
  time: z
    .string()
    .regex(/^[\d:-]+$/, 'a Slurm time limit such as 2:00:00 or 90')
    .optional()
    .describe('--time'),
})
export type SlurmResources = Required<z.infer<typeof resources>>

export const slurmConfigSchema = z.strictObject({
  partition: z.string().min(1).optional(),
  /** Extra sbatch flags for every job, e.g. "--account=speech --qos=normal". */
  opts: z.string().default(''),
  /** Array tasks per shardable step; 1 submits it as one job. */
  shards: z.number().int().min(1).max(1000).default(2),
  /** Keyed by step name (`dnn.s1`) or by command (`train-student`, `infer`; `fn` for in-process steps). */
  resources: z.record(z.string(), resources).default({}),
  /** Seconds between two looks at the queue while waiting. */
  poll: z.number().positive().default(2),
})
export type SlurmConfig = z.infer<typeof slurmConfigSchema>

/** The defaults: training is the long step; everything else is minutes on one core. */
export const DEFAULT_RESOURCES: Record<string, SlurmResources> = {
  default: { cpus: 1, mem: '2G', time: '1:00:00' },
  'train-teacher': { cpus: 1, mem: '4G', time: '8:00:00' },
  'train-student': { cpus: 1, mem: '4G', time: '8:00:00' },
}

export function readSlurmConfig(path: string | undefined): SlurmConfig {
  const raw = path ? readConfigFile(path) : {}
  const r = slurmConfigSchema.safeParse(raw)
  if (r.success) return r.data
  const i = r.error.issues[0]
  throw new KtpError('usage', `--slurm-config ${path}: ${i.path.join('.') || 'config'}: ${i.message}`)
}

export function stepResources(cfg: SlurmConfig, s: Step): SlurmResources {
  const command = s.cmd ? s.cmd[0] : 'fn'
  return {
    ...DEFAULT_RESOURCES.default,
    ...DEFAULT_RESOURCES[command],
    ...s.resources,
    ...cfg.resources.default,
    ...cfg.resources[command],
    ...cfg.resources[s.name],
  }
}
