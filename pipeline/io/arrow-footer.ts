import { MetadataVersion, Schema } from 'apache-arrow'
import { Footer as FooterTable } from 'apache-arrow/fb/footer'
import { FileBlock, Footer } from 'apache-arrow/ipc/metadata/file'
import { Builder } from 'flatbuffers'
import { doubled } from './doubled.js'

/**
 * The record-batch list of an Arrow file's footer (position, metadata and body length of every
 * batch), as growable typed columns, and the footer encoded from them.
 *
 * apache-arrow keeps a FileBlock object per batch and, to encode the footer, copies the list
 * twice and makes two BigInts per batch in a builder that grows by doubling. For a file of one
 * utterance per batch that is ~200 bytes of garbage an utterance in one synchronous burst at the
 * very end: at 48,000 utterances it grew V8's heap by ~20 MB, the peak of `ktp infer` (issue 16).
 * Here the list takes 20 bytes a batch and the footer is written straight into a builder of its
 * final size.
 */
export class FileBlocks {
  private n = 0
  private offsets = new Float64Array(1024)
  private bodies = new Float64Array(1024)
  private metas = new Int32Array(1024)

  get length(): number {
    return this.n
  }

  push(offset: number, metaDataLength: number, bodyLength: number): void {
    if (this.n === this.offsets.length) {
      this.offsets = doubled(this.offsets)
      this.bodies = doubled(this.bodies)
      this.metas = doubled(this.metas)
    }
    this.offsets[this.n] = offset
    this.metas[this.n] = metaDataLength
    this.bodies[this.n] = bodyLength
    this.n++
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

  /** apache-arrow's own objects (its encoder, for the check below). */
  toFileBlocks(): FileBlock[] {
    return Array.from({ length: this.n }, (_, i) => new FileBlock(this.metas[i], this.bodies[i], this.offsets[i]))
  }

  /**
   * The footer flatbuffer: apache-arrow's Footer.encode, step for step (schema, then the blocks
   * back to front as flatbuffers builds vectors, then an empty dictionary list), with each int64
   * written as its two 32-bit halves instead of a BigInt.
   */
  encodeFooter(schema: Schema): Uint8Array {
    const b = new Builder(this.n * 24 + 4096)
    const schemaOffset = (Schema as unknown as { encode(b: Builder, s: Schema): number }).encode(b, schema)
    FooterTable.startRecordBatchesVector(b, this.n)
    for (let i = this.n - 1; i >= 0; i--) {
      // struct Block { offset: long; metaDataLength: int; (4 bytes pad) bodyLength: long }, built backwards
      b.prep(8, 24)
      writeInt64(b, this.bodies[i])
      b.pad(4)
      b.writeInt32(this.metas[i])
      writeInt64(b, this.offsets[i])
    }
    const batches = b.endVector()
    FooterTable.startDictionariesVector(b, 0)
    const dictionaries = b.endVector()
    FooterTable.startFooter(b)
    FooterTable.addSchema(b, schemaOffset)
    FooterTable.addVersion(b, MetadataVersion.V5)
    FooterTable.addRecordBatches(b, batches)
    FooterTable.addDictionaries(b, dictionaries)
    FooterTable.finishFooterBuffer(b, FooterTable.endFooter(b))
    return b.asUint8Array()
  }
}

/** A non-negative integer below 2^53 as a little-endian int64 (the builder writes downwards: high half first). */
function writeInt64(b: Builder, x: number): void {
  b.writeInt32(Math.floor(x / 2 ** 32) | 0)
  b.writeInt32(x >>> 0)
}

const footerChecks = new WeakMap<Schema, boolean>()

/**
 * Whether encodeFooter lays a footer out byte for byte as apache-arrow does, for `schema`: checked
 * on three blocks (one past 4 GB) before the fast encoder is trusted with a file, so a future
 * apache-arrow that lays footers out otherwise costs memory, never a different file. Answered once
 * per schema object (every file of a run shares its schema).
 */
export function sameFooterAsArrow(schema: Schema): boolean {
  let same = footerChecks.get(schema)
  if (same === undefined) {
    same = checkFooter(schema)
    footerChecks.set(schema, same)
  }
  return same
}

function checkFooter(schema: Schema): boolean {
  const sample = new FileBlocks()
  sample.push(8, 200, 4096)
  sample.push(4304, 216, 2 ** 32 + 8)
  sample.push(2 ** 32 + 4528, 192, 0)
  const arrow = Footer.encode(new Footer(schema, MetadataVersion.V5, sample.toFileBlocks(), []))
  return Buffer.from(sample.encodeFooter(schema)).equals(Buffer.from(arrow))
}
