import t from 'tap'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { RecordBatchReader } from 'apache-arrow'
import { ktp, tmp, writeFeatures } from './helpers.js'
import { type LabelError, aliFrameLabels, ctmFrameLabels, ctmToTimed, framesBefore } from '../stages/labels/stage.js'
import { inventoryFromNames, loadLabelMap, parseInventory } from '../stages/formats/inventory.js'
import { parseCtm } from '../stages/formats/ctm.js'
import { TIMIT_PHONES_48 } from '../stages/scoring/timit-phones.js'
import { getVector, uttId } from '../schemas/utterance.js'

const FRAMING = { frameShift: 10, frameLength: 25, tolerance: 2 }
const abc = inventoryFromNames(['a', 'b', 'c'])
// a [0, 50 ms), b [50, 100 ms), c [100, 200 ms)
const CTM = 'u 1 0 0.05 a\nu 1 0.05 0.05 b\nu 1 0.1 0.1 c\n'
const timed = (text: string, inv = abc, map: string | null = null) =>
  ctmToTimed(parseCtm(text, 'x.ctm').get('u')!, inv, map ? loadLabelMap(map) : null)
const err = (f: () => unknown) => {
  try {
    f()
  } catch (e) {
    return `${(e as LabelError).code}: ${(e as Error).message}`
  }
  return 'no error'
}

t.test('frame-centre rule by hand: centre of frame t is 10t + 12.5 ms', async (t) => {
  t.equal(framesBefore(0.2, 10, 25), 19, 'centres 12.5 … 192.5 ms lie before 200 ms')
  const lab = ctmFrameLabels(timed(CTM), 19, FRAMING)
  // centres 12.5..42.5 → a (4), 52.5..92.5 → b (5), 102.5..192.5 → c (10)
  t.same(Array.from(lab), [0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2])
  const onCentre = ctmFrameLabels(timed('u 1 0 0.0325 a\nu 1 0.0325 0.1675 b\n'), 19, FRAMING)
  t.same(
    Array.from(onCentre.subarray(0, 4)),
    [0, 0, 1, 1],
    'a boundary exactly on a centre (32.5 ms) belongs to the later segment',
  )
  const other = ctmFrameLabels(timed(CTM), 9, { frameShift: 20, frameLength: 40, tolerance: 0 })
  t.same(Array.from(other), [0, 0, 1, 1, 2, 2, 2, 2, 2], 'shift 20, length 40: centres 20, 40, 60 …; 100 ms starts c')
})

t.test('tolerance at the end: extend within it, per-utterance errors beyond', async (t) => {
  t.same(
    Array.from(ctmFrameLabels(timed(CTM), 21, FRAMING).subarray(17)),
    [2, 2, 2, 2],
    '2 uncovered frames take the last label',
  )
  t.match(
    err(() => ctmFrameLabels(timed(CTM), 22, FRAMING)),
    /^uncovered: 3 frames at the end are not covered by the alignment \(tolerance 2/,
  )
  t.equal(ctmFrameLabels(timed(CTM), 17, FRAMING).length, 17, 'an alignment 2 frames longer than the features is cut')
  t.match(
    err(() => ctmFrameLabels(timed(CTM), 16, FRAMING)),
    /^length-mismatch: the alignment runs to 0\.200 s \(19 frames\) but the features have 16 frames \(tolerance 2\)/,
  )
  const filled = ctmFrameLabels(timed(CTM), 22, { ...FRAMING, fill: 0 })
  t.same(Array.from(filled.subarray(18)), [2, 0, 0, 0], '--fill labels every uncovered frame')
})

t.test('gaps need --fill; unknown labels are per-utterance errors', async (t) => {
  const gap = 'u 1 0 0.05 a\nu 1 0.1 0.1 c\n'
  t.match(
    err(() => ctmFrameLabels(timed(gap), 19, FRAMING)),
    /^uncovered: frame 4 \(centre 0\.0525 s\) falls in a gap/,
  )
  t.same(Array.from(ctmFrameLabels(timed(gap), 19, { ...FRAMING, fill: 1 }).subarray(3, 10)), [0, 1, 1, 1, 1, 1, 2])
  t.match(
    err(() => timed('u 1 0 0.1 zz\n')),
    /^unknown-label: label 'zz' at 0 s is not in the inventory/,
  )
})

t.test('TIMIT 61→48: fixed 48-class inventory; q is deleted and its frames split between neighbours', async (t) => {
  const inv = inventoryFromNames(TIMIT_PHONES_48)
  t.equal(inv.names.length, 48)
  const lab = ctmFrameLabels(timed('u 1 0 0.05 h#\nu 1 0.05 0.05 q\nu 1 0.1 0.1 iy\n', inv, 'timit48'), 19, FRAMING)
  const sil = inv.ids.get('sil')!
  const iy = inv.ids.get('iy')!
  // q covers frames 4..8 (5 frames): the first 3 go to sil (before), the last 2 to iy (after)
  t.same(Array.from(lab), [...Array(7).fill(sil), ...Array(12).fill(iy)])
  const folded = ctmFrameLabels(timed('u 1 0 0.1 bcl\nu 1 0.1 0.1 ax-h\n', inv, 'timit48'), 19, FRAMING)
  t.same([folded[0], folded[18]], [inv.ids.get('vcl'), inv.ids.get('ax')], 'bcl → vcl, ax-h → ax')
  t.match(
    err(() => timed('u 1 0 0.1 xyz\n', inv, 'timit48')),
    /^unknown-label: label 'xyz' is not a TIMIT phone/,
  )
  const lead = ctmFrameLabels(timed('u 1 0 0.05 q\nu 1 0.05 0.15 iy\n', inv, 'timit48'), 19, FRAMING)
  t.ok(
    lead.every((x) => x === iy),
    'q at the start goes wholly to the next phone',
  )
})

t.test('Kaldi alignments: ids checked, small length differences padded or cut', async (t) => {
  const inv = parseInventory('sil 0\na 1\nb 3\n', 'phones.txt')
  t.equal(inv.names.length, 4)
  t.same(Array.from(aliFrameLabels(Int32Array.of(0, 1, 3), 5, inv, 2)), [0, 1, 3, 3, 3])
  t.same(Array.from(aliFrameLabels(Int32Array.of(0, 1, 3), 2, inv, 2)), [0, 1])
  t.match(
    err(() => aliFrameLabels(Int32Array.of(0, 2), null, inv, 2)),
    /^bad-label-id: frame 1: label id 2 is not in the inventory/,
  )
  t.match(
    err(() => aliFrameLabels(Int32Array.of(0, 4), null, inv, 2)),
    /label id 4 is not in the inventory \(0 ≤ id < 4\)/,
  )
  t.match(
    err(() => aliFrameLabels(Int32Array.of(0, 1), 5, inv, 2)),
    /^length-mismatch: the alignment has 2 frames but the features have 5 \(tolerance 2\)/,
  )
  t.throws(() => parseInventory('a 0\nb 0\n', 'p.txt'), /p\.txt:2: id 0 already names 'a'/)
})

t.test(
  'CLI: ktp labels --ctm --feats writes labels@1 with num_classes and inventory; failures are per utterance',
  async (t) => {
    const dir = tmp('ktp-labels-')
    const feats = join(dir, 'f.arrow')
    writeFeatures(
      feats,
      [
        { utt: 'u', frames: 19 },
        { utt: 'v', frames: 40 },
        { utt: 'w', frames: 5 },
      ],
      3,
    )
    writeFileSync(join(dir, 'x.ctm'), `${CTM}v 1 0 0.1 zz\n`)
    const out = join(dir, 'train.labels.arrow')
    const r = ktp(['labels', '--ctm', join(dir, 'x.ctm'), '--feats', feats, '-o', out, '--quiet'])
    t.equal(r.code, 1, 'some utterances failed')
    t.match(r.stderr, /WARNING v \(.*x\.ctm\): 31 frames at the end are not covered/)
    t.match(r.stderr, /WARNING w \(.*x\.ctm\): no segments for this utterance in the CTM/)
    t.match(r.stderr, /done 1, failed 2/)
    const [b] = RecordBatchReader.from(readFileSync(out)).readAll()
    t.equal(uttId(b), 'u')
    t.same(Array.from(getVector(b, 'labels')), [0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2])
    t.equal(b.schema.metadata.get('ktp.schema'), 'labels@1')
    t.equal(b.schema.metadata.get('ktp.num_classes'), '4')
    t.same(JSON.parse(b.schema.metadata.get('ktp.inventory')!), ['a', 'b', 'c', 'zz'])
    const invFile = join(dir, 'train.labels.inventory.txt')
    t.ok(existsSync(invFile))
    t.equal(readFileSync(invFile, 'utf8'), 'a 0\nb 1\nc 2\nzz 3\n')

    writeFileSync(join(dir, 'abc.txt'), 'a 0\nb 1\nc 2\n')
    const out2 = join(dir, 'l2.arrow')
    const r2 = ktp([
      'labels',
      '--ctm',
      join(dir, 'x.ctm'),
      '--feats',
      feats,
      '--inventory',
      join(dir, 'abc.txt'),
      '--fill',
      'a',
      '-o',
      out2,
      '--quiet',
    ])
    t.match(r2.stderr, /WARNING v .*label 'zz' at 0 s is not in the inventory/)
    t.equal(RecordBatchReader.from(readFileSync(out2)).readAll()[0].schema.metadata.get('ktp.num_classes'), '3')

    writeFileSync(join(dir, 'ali.txt'), 'u 0 1 1 2\nv 2 2\n')
    const out3 = join(dir, 'ali.arrow')
    const r3 = ktp([
      'labels',
      '--ali',
      join(dir, 'ali.txt'),
      '--inventory',
      join(dir, 'abc.txt'),
      '-o',
      out3,
      '--quiet',
    ])
    t.equal(r3.code, 0, r3.stderr)
    const rows = RecordBatchReader.from(readFileSync(out3)).readAll()
    t.same(
      rows.map((x) => [uttId(x), Array.from(getVector(x, 'labels'))]),
      [
        ['u', [0, 1, 1, 2]],
        ['v', [2, 2]],
      ],
    )
    const usage = ktp(['labels', '--ctm', join(dir, 'x.ctm'), '-o', join(dir, 'z.arrow')])
    t.equal(usage.code, 2)
    t.match(usage.stderr, /--ctm needs --feats FILE/)
    t.match(ktp(['labels', '--feats', feats]).stderr, /give exactly one of --ctm FILE or --ali FILE/)
  },
)
