/**
 * `ktp export`: a trained model as a standard tfjs-layers model, and with `--web` as a whole static
 * site that recognises speech in the browser (stages/web/site.ts lists its files). The site holds
 * everything `ktp features | ktp cmvn apply | ktp infer | ktp decode` would use — the front-end
 * options `ktp features` recorded, the CMVN statistics, the student, the HMM, the LM estimated as
 * `ktp decode` estimates it, and the decoding options — so the page gives the same words.
 *
 * The output appears whole or not at all: it is written beside its destination and renamed into
 * place; an earlier site (or model export) there is replaced, anything else is refused.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { createRequire } from 'node:module'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as tf from '@tensorflow/tfjs'
import { z } from 'zod'
import { openArrow } from '../../pipeline/io/arrow-source.js'
import { onAbort } from '../../pipeline/io/signals.js'
import { KtpError } from '../../schemas/errors.js'
import { readMeta } from '../../schemas/metadata.js'
import { featurePlan, featuresOptions } from '../features/stage.js'
import { parseStats } from '../cmvn/stage.js'
import { decodeOptions, estimateLm, type DecodeOptions } from '../decode/stage.js'
import { hmmToJson, pdfNames, readHmm } from '../hmm/model.js'
import { lmToJson } from '../hmm/lm.js'
import { parseSentences, readText } from '../formats/transcripts.js'
import { toLayersModel } from '../nn/index.js'
import { loadModel, type ModelMeta } from '../train/model-store.js'
import { useBackend } from '../train/session.js'
import { SITE_FILES, SITE_FORMAT, SITE_VERSION, WASM_FILES, type SiteManifest } from '../web/site.js'

/** The page as `npm run build` bundled it (stages/web/build.ts): dist/web/, beside dist/stages/. */
const WEB_DIST = fileURLToPath(new URL('../../web/', import.meta.url))

export const exportOptions = decodeOptions.extend({
  web: z
    .boolean()
    .default(false)
    .describe('write a static web site that recognises speech in the browser (else: only the tfjs-layers model)'),
  varFloor: z.number().positive().default(1e-20).describe('CMVN variance floor, as ktp cmvn apply --var-floor'),
})
export type ExportOptions = z.infer<typeof exportOptions>

export interface ExportFiles {
  /** trained model directory (ktp.json + params.bin) */
  model: string
  output: string
  /** --web: the HMM, LM text, CMVN statistics and the features the model was trained on */
  hmm?: string
  lmText?: string
  cmvn?: string
  features?: string
}

/** A file marking a directory as ktp's export, so a later export may replace it and nothing else. */
const MARK = '.ktp-export'

/** The tfjs-layers model (logits) as model.json + weights.bin in `dir`; returns the bytes written. */
export async function writeLayersModel(dir: string, model: ReturnType<typeof loadModel>['model']): Promise<number> {
  mkdirSync(dir, { recursive: true })
  let bytes = 0
  const layers = toLayersModel(model)
  try {
    await layers.save(
      tf.io.withSaveHandler(async (a) => {
        const weights = new Uint8Array(a.weightData as ArrayBuffer)
        const json = JSON.stringify({
          format: 'layers-model',
          generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
          convertedBy: 'ktp export',
          modelTopology: a.modelTopology,
          weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
        })
        writeFileSync(join(dir, 'model.json'), json)
        writeFileSync(join(dir, 'weights.bin'), weights)
        bytes = json.length + weights.length
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }
      }),
    )
  } finally {
    layers.dispose()
  }
  return bytes
}

/** The front end `ktp features` recorded in a features file's ktp.producer. */
async function frontEnd(path: string, meta: ModelMeta) {
  const src = await openArrow(path, ['features'])
  const producer = readMeta(src.schema).producer
  await src.close()
  if (producer?.stage !== 'features')
    throw new KtpError(
      'usage',
      `--features ${path}: written by ${producer?.stage ?? 'an unknown producer'}, expected features as ktp features wrote them (before cmvn), e.g. feats/train.raw.arrow`,
    )
  const plan = featurePlan(featuresOptions.parse(producer.options))
  if (plan.dim !== meta.featureDim)
    throw new KtpError('usage', `--features ${path}: dim ${plan.dim}, but the model takes ${meta.featureDim}`)
  return plan
}

function need(v: string | undefined, flag: string, what: string): string {
  if (!v) throw new KtpError('usage', `--web needs ${flag} (${what})`)
  return v
}

/** The site's contents in `dir` (a fresh directory); returns the manifest. */
async function writeSite(dir: string, o: ExportOptions, f: ExportFiles): Promise<SiteManifest> {
  const hmmPath = need(f.hmm, '--hmm FILE', 'the HMM the model was trained on')
  const cmvnPath = need(f.cmvn, '--cmvn STATS', 'the CMVN statistics of the training features')
  const featsPath = need(f.features, '--features FILE', 'the features file ktp features wrote for training')
  const { model, meta } = loadModel(f.model)
  const hmm = readHmm(hmmPath)
  if (hmm.units.numPdfs !== meta.numClasses)
    throw new KtpError(
      'usage',
      `--hmm ${hmmPath}: ${hmm.units.numPdfs} pdfs, but the model has ${meta.numClasses} classes`,
    )
  if (meta.inventory && meta.inventory.join(' ') !== pdfNames(hmm.units).join(' '))
    throw new KtpError('usage', `--hmm ${hmmPath}: its pdfs are not the classes the model was trained on`)
  const stats = parseStats(readText(cmvnPath, '--cmvn'), cmvnPath)
  if (stats.mode !== 'global' || !stats.stats.global)
    throw new KtpError('usage', `--cmvn ${cmvnPath}: ${stats.mode} statistics; the page applies global statistics only`)
  if (stats.dim !== meta.featureDim)
    throw new KtpError('usage', `--cmvn ${cmvnPath}: dim ${stats.dim}, but the model takes ${meta.featureDim}`)
  const plan = await frontEnd(featsPath, meta)
  const sentences = f.lmText ? parseSentences(readText(f.lmText, '--lm-text')) : null
  const lm = estimateLm(hmm, o, sentences, f.lmText ?? '')

  await writeLayersModel(join(dir, dirname(SITE_FILES.model)), model)
  const json = (file: string, v: unknown) => writeFileSync(join(dir, file), `${JSON.stringify(v)}\n`)
  json(SITE_FILES.hmm, hmmToJson(hmm))
  json(SITE_FILES.lm, lmToJson(lm))
  json(SITE_FILES.cmvn, stats)
  const manifest: SiteManifest = {
    format: SITE_FORMAT,
    version: SITE_VERSION,
    source: {
      model: basename(resolve(f.model)),
      fingerprint: meta.fingerprint,
      hmm: basename(hmmPath),
      lm: f.lmText ? `${o.lm} from ${basename(f.lmText)}` : o.lm,
      cmvn: basename(cmvnPath),
      features: basename(featsPath),
    },
    model: {
      type: meta.spec.model.type,
      input: model.input,
      splice: meta.splice,
      featureDim: meta.featureDim,
      numClasses: meta.numClasses,
    },
    features: { type: plan.type, kaldi: plan.kaldi as Record<string, unknown> },
    cmvn: { normVars: stats.norm_vars, varFloor: o.varFloor },
    decoding: decodingOf(o),
  }
  json(SITE_FILES.manifest, manifest)
  // the page (built by npm run build) and the tfjs wasm binaries it loads
  for (const file of [SITE_FILES.page, SITE_FILES.bundle]) {
    if (!existsSync(join(WEB_DIST, file)))
      throw new KtpError('no-file', `${join(WEB_DIST, file)}: the page is not built; run npm run build`)
    copyFileSync(join(WEB_DIST, file), join(dir, file))
  }
  const wasmDir = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'))
  for (const w of WASM_FILES) copyFileSync(join(wasmDir, w), join(dir, w))
  return manifest
}

function decodingOf(o: DecodeOptions): SiteManifest['decoding'] {
  return {
    acousticScale: o.acousticScale,
    insertionPenalty: o.insertionPenalty,
    lmScale: o.lmScale,
    beam: o.beam,
    maxActive: o.maxActive,
    optionalSilence: o.optionalSilence,
    silenceProb: o.silenceProb,
    usePriors: o.usePriors,
    frameShift: o.frameShift,
  }
}

/** Write into a fresh sibling of `out`, then swap it into place (an earlier export there is replaced). */
async function whole<T>(out: string, fill: (dir: string) => Promise<T>): Promise<T> {
  const dest = resolve(out)
  if (existsSync(dest) && readdirSync(dest).length > 0 && !existsSync(join(dest, MARK)))
    throw new KtpError('exists', `${out}: exists and is not a ktp export; not overwriting it (choose another -o)`)
  const tmp = `${dest}.partial-${process.pid}`
  rmSync(tmp, { recursive: true, force: true })
  mkdirSync(tmp, { recursive: true })
  // a stop by a signal midway takes the half-written directory with it
  const forget = onAbort(() => rmSync(tmp, { recursive: true, force: true }))
  try {
    const r = await fill(tmp)
    writeFileSync(join(tmp, MARK), 'written by ktp export; a later ktp export may replace this directory\n')
    const old = `${dest}.old-${process.pid}`
    if (existsSync(dest)) renameSync(dest, old)
    renameSync(tmp, dest)
    rmSync(old, { recursive: true, force: true })
    return r
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true })
    throw err
  } finally {
    forget()
  }
}

/** `ktp export`: exit 0, with the files written and their sizes on stderr. */
export async function exportModel(
  o: ExportOptions,
  f: ExportFiles,
  log = (l: string) => process.stderr.write(`${l}\n`),
) {
  await useBackend('auto', log) // and not tfjs' own choice in Node, whose banner goes to stdout
  if (!o.web) {
    const bytes = await whole(f.output, async (dir) => writeLayersModel(dir, loadModel(f.model).model))
    log(`ktp export: ${f.output}/model.json + weights.bin (${bytes} bytes), a tfjs-layers model of logits`)
    return 0
  }
  const m = await whole(f.output, (dir) => writeSite(dir, o, f))
  const size = (file: string) => readFileSync(join(f.output, file)).length
  log(
    `ktp export: ${f.output}: a ${m.model.type} student (${m.model.numClasses} classes) recognising ${m.features.kaldi.sampleFrequency} Hz audio; ` +
      `page bundle ${size(SITE_FILES.bundle)} bytes, model ${size(SITE_FILES.model) + size('model/weights.bin')} bytes; open it with: ktp serve ${f.output}`,
  )
  return 0
}
