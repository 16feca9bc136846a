import { FileBlocks } from './arrow-footer.js'
import { doubled } from './doubled.js'

/**
 * Where the logged messages of a resumable writer's utterances lie: input position, log file,
 * and the message's block in that log (byte offset and the two lengths, as a footer lists them:
 * FileBlocks), as growable typed columns. An object per
 * utterance with its id (~120 bytes on V8's heap) grew `ktp infer`'s peak with the length of its
 * input; these columns take 32 bytes an utterance, off the heap. The ids are not kept: the final
 * file is ordered by input position alone, and duplicates are refused before a write.
 */
export class MessageRefs {
  private n = 0
  private ords = new Float64Array(1024)
  private logIds = new Int32Array(1024)
  private readonly blocks = new FileBlocks()
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
    this.blocks.push(offset, meta, body)
  }

  private grow(): void {
    this.ords = doubled(this.ords)
    this.logIds = doubled(this.logIds)
  }

  /** Indices in input order (ties, which one input cannot make, by log and offset). */
  byOrd(): Int32Array {
    const idx = Int32Array.from({ length: this.n }, (_, i) => i)
    return idx.sort(
      (a, b) => this.ords[a] - this.ords[b] || this.logIds[a] - this.logIds[b] || this.offset(a) - this.offset(b),
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
    return this.blocks.offset(i)
  }
  meta(i: number): number {
    return this.blocks.meta(i)
  }
  body(i: number): number {
    return this.blocks.body(i)
  }
}
