import { readFileSync } from 'node:fs'
import { KtpError } from '../../schemas/errors.js'
import { TIMIT_61_TO_48, TIMIT_PHONES_39, TIMIT_PHONES_48, TIMIT_TO_39 } from '../scoring/timit-phones.js'
import { cCompare } from './kaldi-tables.js'

/**
 * Label inventories (Kaldi `phones.txt` style: `name id` per line) and label maps (TIMIT 61→48 /
 * 61→39, or a `from [to]` file). The inventory fixes the class ids of a labels@1 file; a student
 * and its teacher must share it, so it travels in the Arrow metadata as well.
 */
export interface Inventory {
  /** name by class id; null where an id is unused (Kaldi tables may skip ids). */
  names: (string | null)[]
  ids: Map<string, number>
}

export function numClasses(inv: Inventory): number {
  return inv.names.length
}

export function inventoryFromNames(names: readonly string[]): Inventory {
  return { names: [...names], ids: new Map(names.map((n, i) => [n, i])) }
}

/** Parse `name id` lines; duplicate names or ids, and negative ids, are errors naming the line. */
export function parseInventory(text: string, source: string): Inventory {
  const names: (string | null)[] = []
  const ids = new Map<string, number>()
  text.split('\n').forEach((raw, n) => {
    const line = raw.trim()
    if (line === '') return
    const t = line.split(/\s+/)
    const id = Number(t[1])
    if (t.length !== 2 || !Number.isInteger(id) || id < 0)
      throw new KtpError(
        'bad-inventory',
        `${source}:${n + 1}: expected 'name id' with an integer id ≥ 0, got '${line}'`,
      )
    if (ids.has(t[0])) throw new KtpError('bad-inventory', `${source}:${n + 1}: label '${t[0]}' listed twice`)
    if (names[id] != null)
      throw new KtpError('bad-inventory', `${source}:${n + 1}: id ${id} already names '${names[id]}'`)
    while (names.length <= id) names.push(null)
    names[id] = t[0]
    ids.set(t[0], id)
  })
  if (ids.size === 0) throw new KtpError('bad-inventory', `${source}: empty inventory`)
  return { names, ids }
}

export function formatInventory(inv: Inventory): string {
  return inv.names.map((n, i) => (n === null ? '' : `${n} ${i}\n`)).join('')
}

/** An inventory of the given labels in C order (what `--inventory` absent means). */
export function inventoryFromLabels(labels: Iterable<string>): Inventory {
  return inventoryFromNames([...new Set(labels)].sort(cCompare))
}

/**
 * A label map: `apply(label)` gives the new label, null to delete it, or throws for a label the
 * map does not know. `inventory`: the fixed target set when the map defines one (TIMIT), so that
 * ids do not depend on which phones a subset happens to contain.
 */
export interface LabelMap {
  name: string
  apply(label: string): string | null
  inventory?: readonly string[]
  /** Content for the fingerprint (a map file's text). */
  content: string
}

function tableMap(name: string, table: Readonly<Record<string, string | null>>, targets: readonly string[]): LabelMap {
  const targetSet = new Set(targets)
  return {
    name,
    inventory: targets,
    content: name,
    apply(label) {
      const l = label.toLowerCase()
      if (l in table) return table[l]
      // Already-folded data (e.g. a 48-phone CTM) passes through a map onto the same set.
      if (targetSet.has(l)) return l
      throw new KtpError('unknown-label', `label '${label}' is not a TIMIT phone (--map ${name})`)
    },
  }
}

/** `timit48`, `timit39`, or a file of `from to` lines (`from` alone = delete). */
export function loadLabelMap(spec: string): LabelMap {
  if (spec === 'timit48') return tableMap('timit48', TIMIT_61_TO_48, TIMIT_PHONES_48)
  if (spec === 'timit39') return tableMap('timit39', TIMIT_TO_39, TIMIT_PHONES_39)
  let text: string
  try {
    text = readFileSync(spec, 'utf8')
  } catch {
    throw new KtpError('usage', `--map: expected timit48, timit39 or a map file, got '${spec}' (no such file)`)
  }
  const m = new Map<string, string | null>()
  text.split('\n').forEach((raw, n) => {
    const t = raw.trim().split(/\s+/).filter(Boolean)
    if (t.length === 0) return
    if (t.length > 2) throw new KtpError('bad-map', `${spec}:${n + 1}: expected 'from [to]', got '${raw.trim()}'`)
    if (m.has(t[0])) throw new KtpError('bad-map', `${spec}:${n + 1}: label '${t[0]}' mapped twice`)
    m.set(t[0], t[1] ?? null)
  })
  return {
    name: spec,
    content: text,
    apply(label) {
      const v = m.get(label)
      if (v === undefined) throw new KtpError('unknown-label', `label '${label}' is not in the map ${spec}`)
      return v
    },
  }
}
