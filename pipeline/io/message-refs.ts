import { doubled } from './doubled.js'

/**
 * Where the logged messages of a resumable writer's utterances lie: input position, log file,
 * byte offset and the two message lengths of each, as growable typed columns. An object per
 * utterance with its id (~120 bytes on V8's heap) grew `ktp infer`'s peak with the length of its
 * input; these columns take 36 bytes an utterance, off the heap. The ids are not kept: the final
 * file is ordered by input position alone, and duplicates are refused before a write.
 */
export class MessageRefs {
  private n = 0
  private ords = new Float64Array(1024)
  private offsets = new Float64Array(1024)
  private metas = new Int32Array(1024)
  private bodies = new Float64Array(1024)
  private logIds = new Int32Array(1024)
  /** Log paths, by the index logIds holds. */
  private readonly logs: string[] = []

  get size(): number {
    return this.n
  }

  push(ord: number, log: string, offset: number, meta: number, body: number): void {
    if (this.n === this.ords.length) this.grow()
    let l = this.logs.length - 1
    // (refs come log by log: the last log is nearly always the one)
    if (l < 0 || this.logs[l] !== log) l = this.logs.indexOf(log)
    if (l < 0) l = this.logs.push(log) - 1
    const i = this.n++
    this.ords[i] = ord
    this.logIds[i] = l
    this.offsets[i] = offset
    this.metas[i] = meta
    this.bodies[i] = body
  }

  private grow(): void {
    this.ords = doubled(this.ords)
    this.offsets = doubled(this.offsets)
    this.metas = doubled(this.metas)
    this.bodies = doubled(this.bodies)
    this.logIds = doubled(this.logIds)
  }

  /** Indices in input order (ties, which one input cannot make, by log and offset). */
  byOrd(): Int32Array {
    const idx = Int32Array.from({ length: this.n }, (_, i) => i)
    return idx.sort(
      (a, b) => this.ords[a] - this.ords[b] || this.logIds[a] - this.logIds[b] || this.offsets[a] - this.offsets[b],
    )
  }

  ord(i: number): number {
    return this.ords[i]
  }
  log(i: number): string {
    return this.logs[this.logIds[i]]
  }
  /** Same log as ref j (compared by index, not path). */
  sameLog(i: number, j: number): boolean {
    return this.logIds[i] === this.logIds[j]
  }
  offset(i: number): number {
    return this.offsets[i]
  }
  meta(i: number): number {
    return this.metas[i]
  }
  body(i: number): number {
    return this.bodies[i]
  }
}
