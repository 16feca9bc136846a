// ktp as a library: package.json's "exports" names a module that the build makes, and importing the
// package by its name (Node resolves a package's own name to itself) gives the public API, working.
import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from './helpers.js'

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))

t.test('package.json points only at files the build makes', async (t) => {
  t.equal(pkg.main, undefined, 'no "main" (the entry is "exports")')
  const entry = pkg.exports['.']
  for (const f of [entry.default, entry.types, pkg.bin.ktp]) t.ok(existsSync(join(ROOT, f)), `${f} exists`)
})

t.test("import 'ktp': the stages, the engine and the data contract", async (t) => {
  const ktp = await import('ktp')
  // Kaldi's splice-feats: ±1 frame of context, the edge frames repeated
  t.same([...ktp.spliceFrames(new Float32Array([1, 2, 3]), 3, 1, 1, 1)], [1, 1, 2, 1, 2, 3, 2, 3, 3])
  t.ok(ktp.nn.MODEL_TYPE_NAMES.includes('lstm') && ktp.nn.MODEL_TYPE_NAMES.includes('dnn'), 'the model registry')
  t.equal(ktp.studentOptions.parse({ feats: 'f', labels: 'l' }).model, '{"type":"lstm","cells":256,"layers":2}')
  const schema = ktp.makeSchema('features', { widths: { feats: 3 } })
  t.same(
    schema.fields.map((f) => f.name),
    ['utt', 'feats'],
  )
  t.equal(schema.metadata.get('ktp.schema'), 'features@1')
  t.equal(ktp.fingerprint('splice', { left: 1 }, []), ktp.fingerprint('splice', { left: 1 }, []), 'deterministic')
  t.not(ktp.fingerprint('splice', { left: 1 }, []), ktp.fingerprint('splice', { left: 2 }, []), 'option-sensitive')
  for (const f of ['runStage', 'planFeatures', 'planInfer', 'runTrainTeacher', 'runTrainStudent', 'scoreFiles'])
    t.type((ktp as Record<string, unknown>)[f], 'function', f)
})
