import t from 'tap'
import { RecordBatchReader } from 'apache-arrow'
import { makeSchema, validateSchema, columnWidth, elemTypeName, KINDS } from '../schemas/kinds.js'
import { makeUttBatch, getMatrix, getVector, uttId, numFrames, getString, getNumber } from '../schemas/utterance.js'
import { BatchEncoder } from '../pipeline/io/arrow-encoder.js'
import { KtpError } from '../schemas/errors.js'
import { fingerprint, canonicalJson } from '../schemas/fingerprint.js'
import { withMeta } from '../schemas/metadata.js'

function roundTrip(
  schema: ReturnType<typeof makeSchema>,
  rows: Parameters<typeof makeUttBatch>[1][],
  format: 'file' | 'stream',
) {
  const enc = new BatchEncoder(schema, format)
  const parts = [...enc.begin()]
  for (const r of rows) parts.push(...enc.encode(makeUttBatch(schema, r)))
  parts.push(...enc.finish())
  return RecordBatchReader.from(Buffer.concat(parts)).readAll()
}

t.test('every kind round-trips through Arrow IPC with values intact', async (t) => {
  for (const format of ['file', 'stream'] as const) {
    const feats = makeSchema('features', { widths: { feats: 3 } })
    const [a, b] = roundTrip(
      feats,
      [
        { utt: 'u1', feats: Float32Array.of(1, 2, 3, 4, 5, 6) },
        { utt: 'u2', feats: new Float32Array(0) },
      ],
      format,
    )
    t.equal(uttId(a), 'u1')
    t.same(Array.from(getMatrix(a, 'feats').data), [1, 2, 3, 4, 5, 6])
    t.equal(getMatrix(a, 'feats').frames, 2)
    t.equal(numFrames(b), 0, 'an utterance with no frames survives')
    t.equal(a.schema.metadata.get('ktp.schema'), 'features@1')

    const labels = makeSchema('labels')
    const [l] = roundTrip(labels, [{ utt: 'x', labels: Int32Array.of(3, 3, 7) }], format)
    t.same(Array.from(getVector(l, 'labels')), [3, 3, 7])

    const topk = makeSchema('soft-topk', { widths: { ids: 2, logp: 2 } })
    const [k] = roundTrip(
      topk,
      [
        {
          utt: 'y',
          ids: Uint16Array.of(4, 1, 0, 2),
          logp: Uint16Array.of(0x3c00, 0xbc00, 0, 0x4000),
          tail: Float32Array.of(0.25, 0.5),
        },
      ],
      format,
    )
    t.same(Array.from(getMatrix(k, 'ids').data), [4, 1, 0, 2])
    t.same(Array.from(getMatrix(k, 'logp').data), [0x3c00, 0xbc00, 0, 0x4000], 'f16 stays raw bits')
    t.equal(elemTypeName(k.schema.fields[2].type), 'f16')
    t.equal(elemTypeName(k.schema.fields[1].type), 'u16')
    t.equal(validateSchema(k.schema, ['soft-topk'], 'k').kind, 'soft-topk')
    t.same(Array.from(getVector(k, 'tail')), [0.25, 0.5])

    const man = makeSchema('manifest')
    const [m] = roundTrip(
      man,
      [{ utt: 'a', speaker: 's', audio: '/x.wav', channel: null, start: 1.5, end: null, text: 'one two' }],
      format,
    )
    t.equal(getString(m, 'text'), 'one two')
    t.equal(getNumber(m, 'start'), 1.5)
    t.equal(getNumber(m, 'end'), null)
    t.equal(getNumber(m, 'channel'), null)
  }
})

t.test('matrix access is a view, not a copy, and honours slices', async (t) => {
  const s = makeSchema('features', { widths: { feats: 2 } })
  const enc = new BatchEncoder(s, 'stream')
  const parts = [...enc.begin()]
  for (let i = 0; i < 4; i++)
    parts.push(...enc.encode(makeUttBatch(s, { utt: `u${i}`, feats: Float32Array.of(i, i, i + 0.5, i + 0.5) })))
  parts.push(...enc.finish())
  const batches = RecordBatchReader.from(Buffer.concat(parts)).readAll()
  const m = getMatrix(batches[2], 'feats')
  t.same(Array.from(m.data), [2, 2, 2.5, 2.5])
  const again = getMatrix(batches[2], 'feats')
  t.equal(m.data.buffer, again.data.buffer, 'same underlying buffer')
  t.equal(m.data.byteOffset, again.data.byteOffset)
  // a multi-row batch (as pyarrow would write): rows hold 1, 2 and 0 frames of width 2
  const { makeData, RecordBatch, Struct, vectorFromArray, Utf8 } = await import('apache-arrow')
  const featsField = s.fields[1]
  const listType = featsField.type
  const values = makeData({
    type: listType.children[0].type.children[0].type,
    length: 6,
    data: Float32Array.of(0, 1, 2, 3, 4, 5),
  })
  const fsl = makeData({ type: listType.children[0].type, length: 3, child: values })
  const list = makeData({ type: listType, length: 3, valueOffsets: Int32Array.of(0, 1, 3, 3), child: fsl })
  const utt = vectorFromArray(['a', 'b', 'c'], new Utf8()).data[0]
  const big = new RecordBatch(s, makeData({ type: new Struct(s.fields), length: 3, children: [utt, list] }))
  t.equal(uttId(big, 1), 'b')
  t.same(Array.from(getMatrix(big, 'feats', 1).data), [2, 3, 4, 5])
  t.same(Array.from(getMatrix(big.slice(1, 2), 'feats').data), [2, 3, 4, 5], 'slice offsets honoured')
  t.equal(numFrames(big.slice(2, 3)), 0)
})

t.test('validators name the source and what was expected', async (t) => {
  const feats = makeSchema('features', { widths: { feats: 4 } })
  t.equal(validateSchema(feats, ['features'], 'a.arrow').kind, 'features')
  t.equal(columnWidth(feats, 'feats'), 4)
  t.throws(() => validateSchema(feats, ['labels'], 'a.arrow'), {
    code: 'wrong-kind',
    message: /a\.arrow: schema kind is 'features', expected labels/,
  })
  const v2 = withMeta(feats, { 'ktp.schema': 'features@2' })
  t.throws(() => validateSchema(v2, [], 'b.arrow'), { code: 'wrong-version', message: /features@2 is not supported/ })
  const bare = withMeta(feats, {})
  bare.metadata.delete('ktp.schema')
  t.throws(() => validateSchema(bare, ['features'], 'c.arrow'), { code: 'not-ktp' })
  const lying = withMeta(makeSchema('labels'), { 'ktp.schema': 'features@1' })
  t.throws(() => validateSchema(lying, ['features'], 'd.arrow'), {
    code: 'wrong-columns',
    message: /lacks column 'feats'/,
  })
  t.throws(() => makeSchema('soft-dense', { widths: { logp: 3 }, types: { logp: 'i32' } }), KtpError)
  t.throws(() => makeSchema('features'), { code: 'bad-width' })
  t.throws(() => makeUttBatch(feats, { utt: 'x', feats: new Float32Array(5) }), { code: 'bad-shape' })
  t.ok(Object.keys(KINDS).length >= 5)
})

t.test('fingerprints are canonical and sensitive', async (t) => {
  t.equal(canonicalJson({ b: 1, a: [1, { d: 2, c: 3 }] }), '{"a":[1,{"c":3,"d":2}],"b":1}')
  const f1 = fingerprint('fbank', { a: 1, b: 2 }, ['x'])
  t.equal(f1, fingerprint('fbank', { b: 2, a: 1 }, ['x']), 'key order does not matter')
  t.not(f1, fingerprint('fbank', { a: 1, b: 3 }, ['x']))
  t.not(f1, fingerprint('fbank', { a: 1, b: 2 }, ['y']))
  t.not(f1, fingerprint('mfcc', { a: 1, b: 2 }, ['x']))
  t.match(f1, /^[0-9a-f]{32}$/)
})
