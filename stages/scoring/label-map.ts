/**
 * Label maps for scoring (`--map FILE`): one `from to` pair per line; a line with only `from`
 * maps the label to nothing, i.e. deletes it (that is how TIMIT's `q` disappears). Applied to
 * reference and hypothesis alike before alignment, so both sides are scored in the same label set.
 */

/** label → replacement, or `null` to delete the label. Labels not in the map pass unchanged. */
export type LabelMap = ReadonlyMap<string, string | null>

export class LabelMapError extends Error {
  override name = 'LabelMapError'
}

/**
 * Parses the text of a map file. Blank lines and lines starting with `#` or `;;` are skipped.
 * More than two fields, or the same `from` twice with different targets, is an error naming the line.
 */
export function parseLabelMap(text: string, source = 'map'): Map<string, string | null> {
  const map = new Map<string, string | null>()
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';;')) continue
    const f = line.split(/\s+/)
    if (f.length > 2) {
      throw new LabelMapError(`${source}:${i + 1}: expected "from [to]", got ${JSON.stringify(line)}`)
    }
    const to = f.length === 2 ? f[1]! : null
    const prev = map.get(f[0]!)
    if (prev !== undefined && prev !== to) {
      throw new LabelMapError(
        `${source}:${i + 1}: "${f[0]}" mapped twice (${prev ?? '<delete>'} and ${to ?? '<delete>'})`,
      )
    }
    map.set(f[0]!, to)
  }
  return map
}

/** Builds a LabelMap from a plain record (e.g. the TIMIT tables). */
export function labelMapFrom(record: Readonly<Record<string, string | null>>): LabelMap {
  return new Map(Object.entries(record))
}

/** Maps every label; deleted labels are dropped. Returns a new array. */
export function applyLabelMap(words: readonly string[], map: LabelMap): string[] {
  const out: string[] = []
  for (const w of words) {
    const m = map.get(w)
    if (m === undefined) out.push(w)
    else if (m !== null) out.push(m)
  }
  return out
}
