import type { OptimizerName } from '../../stages/train/optimizer.js'
import type { SystemRun } from './systems.js'

/** The sweep's grid and its rows: shared by the planner (sweep.ts) and the report (sweep-report.ts). */
export type TopK = number | 'dense'

export interface SweepAxes {
  dataFraction: number[]
  temperature: number[]
  topK: TopK[]
  optimiser: OptimizerName[]
}

export interface SweepPoint {
  dataFraction: number
  temperature: number
  topK: TopK
  optimiser: OptimizerName
}

export interface SweepRun extends SystemRun {
  point: SweepPoint
}

/** The axes' grid, in the order the axes vary slowest to fastest. */
export function sweepPoints(axes: SweepAxes): SweepPoint[] {
  const pts: SweepPoint[] = []
  for (const dataFraction of axes.dataFraction) {
    for (const topK of axes.topK) {
      for (const temperature of axes.temperature) {
        for (const optimiser of axes.optimiser) pts.push({ dataFraction, temperature, topK, optimiser })
      }
    }
  }
  return pts
}
