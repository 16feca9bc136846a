type GrowableArray = Float64Array | Float32Array | Int32Array | Uint32Array

/**
 * A typed array of twice `a`'s length, `a`'s values first: the step by which the column stores
 * (message-refs, arrow-footer, the decoder's word records) grow, so appends cost O(1) on average.
 */
export function doubled<T extends GrowableArray>(a: T): T {
  const b = new (a.constructor as new (n: number) => T)(Math.max(1, a.length * 2))
  b.set(a)
  return b
}
