// The resumable writer logs many utterances per unit and builds the final file by copying their
// encoded messages: these pin down that neither changes a byte of the output nor loses more than
// the one unit being filled when the process dies.
import t from 'tap'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { RecordBatchReader, type Schema } from 'apache-arrow'
import { BatchEncoder } from '../pipeline/io/arrow-encoder.js'
import { ResumableArrowWriter } from '../pipeline/io/resumable-writer.js'
import { makeSchema } from '../schemas/kinds.js'
import { getMatrix, makeUttBatch, uttId } from '../schemas/utterance.js'
import { rng, tmp } from './helpers.js'

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')
const dir = tmp('ktp-units-')
const DIM = 3
const schema = makeSchema('features', { widths: { feats: DIM }, metadata: { 'ktp.fingerprint': 'fp-units' } })
const r = rng(7)
// 200 utterances of 1–40 frames (12–480 bytes of values each)
const rows = Array.from({ length: 200 }, (_, i) => {
  const feats = new Float32Array((1 + ((i * 7) % 40)) * DIM)
  for (let k = 0; k < feats.length; k++) feats[k] = r() * 2 - 1
  return { utt: `u${String(i).padStart(3, '0')}`, feats }
})
const batch = (i: number) => makeUttBatch(schema, rows[i])

/** The file the old writer made: every batch decoded and encoded again by Arrow's file writer. */
function reencoded(s: Schema): Buffer {
  const enc = new BatchEncoder(s, 'file')
  const parts = [...enc.begin()]
  for (let i = 0; i < rows.length; i++) parts.push(...enc.encode(makeUttBatch(s, rows[i])))
  parts.push(...enc.finish())
  return Buffer.concat(parts)
}

const unitsIn = (out: string) =>
  readdirSync(`${out}.partial`)
    .filter((n) => n.endsWith('.log'))
    .reduce(
      (a, f) =>
        a +
        (readFileSync(join(`${out}.partial`, f))
          .toString('latin1')
          .match(/KTPG/g)?.length ?? 0),
      0,
    )

t.test('many utterances per unit; the merged file equals Arrow re-encoding them, byte for byte', async (t) => {
  const out = join(dir, 'whole.arrow')
  const w = ResumableArrowWriter.open(out, schema, { fingerprint: 'f', unitBytes: 4096, unitMs: 60_000 })
  rows.forEach((_, i) => {
    w.write(batch(i), i)
  })
  w.suspend()
  const units = unitsIn(out)
  t.ok(units >= 5 && units <= 40, `200 utterances in ${units} units of ~4 KB, not one unit each`)
  const w2 = ResumableArrowWriter.open(out, schema, { fingerprint: 'f' })
  t.equal(w2.done.size, 200, 'suspend() wrote the unit being filled')
  await w2.finish()
  const bytes = readFileSync(out)
  t.equal(sha(bytes), sha(reencoded(schema)), 'copied messages + our footer = what Arrow writes itself')
  // and a reader that uses the footer (random access) sees every utterance whole, in order
  const reader = RecordBatchReader.from(bytes)
  reader.open()
  t.equal(reader.isFile(), true)
  const got = [...reader]
  t.equal(got.length, 200)
  t.same(
    got.map((b) => uttId(b)),
    rows.map((x) => x.utt),
  )
  t.same(Array.from(getMatrix(got[137], 'feats').data), Array.from(rows[137].feats), 'values of utterance 137')
})

t.test('a process that dies loses at most the unit being filled; the rerun equals an uninterrupted run', async (t) => {
  const whole = join(dir, 'ref.arrow')
  const w0 = ResumableArrowWriter.open(whole, schema, { fingerprint: 'f' })
  rows.forEach((_, i) => {
    w0.write(batch(i), i)
  })
  await w0.finish()

  const out = join(dir, 'died.arrow')
  const w1 = ResumableArrowWriter.open(out, schema, { fingerprint: 'f', unitBytes: 4096, unitMs: 60_000 })
  for (let i = 0; i < 150; i++) w1.write(batch(i), i)
  // no suspend(), no finish(): as after kill -9, only what reached the log counts
  const w2 = ResumableArrowWriter.open(out, schema, { fingerprint: 'f', unitBytes: 4096, unitMs: 60_000 })
  const kept = w2.done.size
  t.ok(kept > 100 && kept < 150, `kept ${kept} of 150 written: all but the unfinished unit`)
  t.same(
    [...w2.done].sort(),
    rows.slice(0, kept).map((x) => x.utt),
    'the kept ones are the first, whole units',
  )
  // the rerun writes the rest, in another order than the input (as --jobs may finish them)
  const rest = rows
    .map((_, i) => i)
    .filter((i) => !w2.done.has(rows[i].utt))
    .reverse()
  for (const i of rest) w2.write(batch(i), i)
  await w2.finish()
  t.equal(sha(readFileSync(out)), sha(readFileSync(whole)), 'byte-identical to the uninterrupted file')
  t.notOk(existsSync(`${out}.partial`))
})

t.test('a partial run logged in the per-utterance format of earlier versions is discarded, not misread', async (t) => {
  const out = join(dir, 'old.arrow')
  mkdirSync(`${out}.partial`, { recursive: true })
  writeFileSync(join(`${out}.partial`, 'meta.json'), JSON.stringify({ fingerprint: 'f' }))
  writeFileSync(join(`${out}.partial`, '00000.log'), Buffer.from('KTPU\x14\x00\x00\x00{"utt":"u000","ord":0}'))
  const msgs: string[] = []
  const w = ResumableArrowWriter.open(out, schema, { fingerprint: 'f', log: (m) => msgs.push(m) })
  t.equal(w.done.size, 0)
  t.match(msgs.join('\n'), /discarding a partial run logged by another version of ktp/)
  rows.forEach((_, i) => {
    w.write(batch(i), i)
  })
  await w.finish()
  t.equal(sha(readFileSync(out)), sha(reencoded(schema)))
})
