/**
 * Buffers for the bodies of record batches, reused once their reader's consumer hands them back.
 *
 * The training feeders read every utterance into a body of its own (arrow-blocks.ts: its arrays
 * are views a shuffle buffer keeps). A fresh buffer per utterance is 2 KB a frame for dense f16
 * soft targets, tens of MB a pass, and that churn of external memory is what made V8 start a full
 * mark of the heap every pass or two ("external memory pressure"), on helper threads that take
 * the student feeder's core on a loaded machine (issue 16: ~1 µs a frame lost between reading and
 * batching). A feeder that is done with an utterance gives its bodies back (readCorpus's
 * `release`), and later reads — of the same pass or the next epoch's — take them again.
 *
 * Only a buffer lent to exactly one consumer may come back: `give` ignores buffers the pool did not
 * lend, or that were marked shared (`share`: a body split into several utterances), so a stray
 * give cannot hand out memory something else still reads. Free buffers are held up to
 * MAX_FREE_BYTES, and dropped when reads stop taking them for a while.
 */

// bodies below this are cheap to allocate and not worth a lookup
const MIN_POOLED = 1 << 12
// free buffers kept at most (the dense f16 feeder's default shuffle buffer is ~180 MB of bodies)
const MAX_FREE_BYTES = 256 << 20
// free buffers are dropped once the pool has been idle (nothing taken or given back) this long: a
// feeder gives back all through a flush of its shuffle buffer and takes right after
const IDLE_MS = 5000

const lent = new WeakSet<ArrayBuffer>()
const free = new Map<number, ArrayBuffer[]>()
let freeBytes = 0
let reused = 0
let usedSinceSweep = false
let sweepPending = false

/**
 * The capacity a body of n bytes is given: n rounded up to an eighth of its power of two (at least
 * 4 KB), so bodies of nearly the same length share a size class and at most 1/8 is unused.
 */
function bodyCapacity(n: number): number {
  if (n < MIN_POOLED) return n
  const step = Math.max(MIN_POOLED, 2 ** Math.floor(Math.log2(n)) / 8)
  return Math.ceil(n / step) * step
}

/** A buffer of n bytes (contents undefined) for one record batch's body; lent when it is large. */
export function takeBody(n: number): Buffer {
  if (n < MIN_POOLED) return Buffer.allocUnsafeSlow(n)
  const cap = bodyCapacity(n)
  let ab = free.get(cap)?.pop()
  if (ab) {
    freeBytes -= cap
    reused++
    usedSinceSweep = true
  } else ab = Buffer.allocUnsafeSlow(cap).buffer as ArrayBuffer
  lent.add(ab)
  return Buffer.from(ab, 0, n)
}

/** Hand back a lent buffer nothing reads any more; any other buffer (or a second give) is ignored. */
export function giveBody(ab: ArrayBufferLike): void {
  if (!lent.has(ab as ArrayBuffer)) return
  lent.delete(ab as ArrayBuffer)
  if (freeBytes + ab.byteLength > MAX_FREE_BYTES) return
  let list = free.get(ab.byteLength)
  if (!list) {
    list = []
    free.set(ab.byteLength, list)
  }
  list.push(ab as ArrayBuffer)
  freeBytes += ab.byteLength
  usedSinceSweep = true
  if (!sweepPending) later()
}

// unref'd: a pending sweep never keeps the process alive
function later(): void {
  sweepPending = true
  setTimeout(sweep, IDLE_MS).unref()
}

/** Drop the free buffers if the pool was idle since the last sweep; else look again later. */
function sweep(): void {
  sweepPending = false
  if (usedSinceSweep) {
    usedSinceSweep = false
    if (freeBytes > 0) later()
    return
  }
  free.clear()
  freeBytes = 0
}

/** Never take this buffer back: its body is shared (several utterances' views) or kept elsewhere. */
export function shareBody(ab: ArrayBufferLike): void {
  lent.delete(ab as ArrayBuffer)
}

/** Bodies given out again so far (tests, diagnostics). */
export function reusedBodies(): number {
  return reused
}

/** Bytes of free buffers the pool holds (tests). */
export function freeBodyBytes(): number {
  return freeBytes
}
