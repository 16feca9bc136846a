import type { TrainingData } from './steps.js'

// The shapes shared by systems.ts and the steps it adds (web.ts), kept apart so neither imports the other.

/** What the systems train and score on: the data side of a recipe. */
export interface SystemsData extends TrainingData {
  /** A path inside the recipe's output directory. */
  p: (...xs: string[]) => string
  hmm: string
  lmText: string
  devText: string
  testText: string
  /** Fold labels before scoring (TIMIT: 39 phones). */
  map?: 'timit39'
  /** Directories/files whose change must re-run evaluation (transcripts). */
  evalInputs: string[]
}

/** One trained-and-evaluated system of one seed: where its model and evaluation are. */
export interface SystemRun {
  system: string
  seed: number
  /** The name of its files: exp/ID, eval/ID.json. */
  id: string
  eval: string
}
