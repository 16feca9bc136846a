/**
 * TIMIT phone folding, as data (Lee & Hon 1989; the table is Kaldi's
 * egs/timit/s5/conf/phones.60-48-39.map).
 *
 * - `TIMIT_61_TO_48`: the training map. Frame targets are built on 48 classes.
 * - `TIMIT_48_TO_39` / `TIMIT_61_TO_39`: the scoring maps (PER is reported on 39 classes).
 * The glottal stop `q` has no class: it maps to `null`, i.e. it is deleted (Kaldi drops it from
 * the transcripts before training and scoring). The closures fold into `cl`/`vcl` at 48 and into
 * `sil` at 39, together with `epi`, `pau` and `h#`.
 */

/** 61 TIMIT labels → 48 training classes; `null` = delete (only `q`). */
export const TIMIT_61_TO_48: Readonly<Record<string, string | null>> = Object.freeze({
  aa: 'aa',
  ae: 'ae',
  ah: 'ah',
  ao: 'ao',
  aw: 'aw',
  ax: 'ax',
  'ax-h': 'ax',
  axr: 'er',
  ay: 'ay',
  b: 'b',
  bcl: 'vcl',
  ch: 'ch',
  d: 'd',
  dcl: 'vcl',
  dh: 'dh',
  dx: 'dx',
  eh: 'eh',
  el: 'el',
  em: 'm',
  en: 'en',
  eng: 'ng',
  epi: 'epi',
  er: 'er',
  ey: 'ey',
  f: 'f',
  g: 'g',
  gcl: 'vcl',
  'h#': 'sil',
  hh: 'hh',
  hv: 'hh',
  ih: 'ih',
  ix: 'ix',
  iy: 'iy',
  jh: 'jh',
  k: 'k',
  kcl: 'cl',
  l: 'l',
  m: 'm',
  n: 'n',
  ng: 'ng',
  nx: 'n',
  ow: 'ow',
  oy: 'oy',
  p: 'p',
  pau: 'sil',
  pcl: 'cl',
  q: null,
  r: 'r',
  s: 's',
  sh: 'sh',
  t: 't',
  tcl: 'cl',
  th: 'th',
  uh: 'uh',
  uw: 'uw',
  ux: 'uw',
  v: 'v',
  w: 'w',
  y: 'y',
  z: 'z',
  zh: 'zh',
})

/** 48 training classes → 39 scoring classes. */
export const TIMIT_48_TO_39: Readonly<Record<string, string>> = Object.freeze({
  aa: 'aa',
  ae: 'ae',
  ah: 'ah',
  ao: 'aa',
  aw: 'aw',
  ax: 'ah',
  er: 'er',
  ay: 'ay',
  b: 'b',
  vcl: 'sil',
  ch: 'ch',
  d: 'd',
  dh: 'dh',
  dx: 'dx',
  eh: 'eh',
  el: 'l',
  m: 'm',
  en: 'n',
  ng: 'ng',
  epi: 'sil',
  ey: 'ey',
  f: 'f',
  g: 'g',
  sil: 'sil',
  hh: 'hh',
  ih: 'ih',
  ix: 'ih',
  iy: 'iy',
  jh: 'jh',
  k: 'k',
  cl: 'sil',
  l: 'l',
  n: 'n',
  ow: 'ow',
  oy: 'oy',
  p: 'p',
  r: 'r',
  s: 's',
  sh: 'sh',
  t: 't',
  th: 'th',
  uh: 'uh',
  uw: 'uw',
  v: 'v',
  w: 'w',
  y: 'y',
  z: 'z',
  zh: 'sh',
})

/** 61 TIMIT labels → 39 scoring classes (the composition of the two maps above). */
export const TIMIT_61_TO_39: Readonly<Record<string, string | null>> = Object.freeze(
  Object.fromEntries(
    Object.entries(TIMIT_61_TO_48).map(([p61, p48]) => [p61, p48 === null ? null : TIMIT_48_TO_39[p48]!]),
  ),
)

/**
 * Scoring map accepting either 61- or 48-label input (a decoder over 48 classes and a reference
 * in 61 labels are both folded to 39). The two label sets agree wherever they overlap
 * (e.g. `ax` is `ah` in both), so one table serves both.
 */
export const TIMIT_TO_39: Readonly<Record<string, string | null>> = Object.freeze({
  ...TIMIT_48_TO_39,
  ...TIMIT_61_TO_39,
})

/** Sorted label inventories, handy for building pdf/unit tables. */
export const TIMIT_PHONES_61: readonly string[] = Object.freeze(Object.keys(TIMIT_61_TO_48).sort())
export const TIMIT_PHONES_48: readonly string[] = Object.freeze(Object.keys(TIMIT_48_TO_39).sort())
export const TIMIT_PHONES_39: readonly string[] = Object.freeze([...new Set(Object.values(TIMIT_48_TO_39))].sort())
