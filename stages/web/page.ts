/**
 * The page of `ktp export --web` (bundled by build.ts into page.js): loads the site (site.ts),
 * picks a tfjs backend (?backend=wasm|webgl|cpu, else the first of webgl, wasm, cpu that starts),
 * and recognises recordings chosen, dropped or recorded from the microphone (resampled to the
 * model's rate with ktp's own resampler). Per recording it shows the transcript, the
 * posteriorgram with the best path, the real-time factor and the backend.
 *
 * For tests and scripts, `window.ktp` exposes the outcome of every recording in order:
 * `{ready, backend, outcomes: [{name, words?, logp?, frames?, classes?, rtf?, error?}]}`.
 */
import * as tf from '@tensorflow/tfjs'
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm'
import { resample } from '../audio/decode.js'
import { installWasmKernelPatches } from '../nn/browser.js'
import { drawPosteriorgram } from './posteriorgram.js'
import {
  type Recognition,
  RecognitionError,
  type Site,
  loadSite,
  modelRate,
  readRecording,
  recognize,
} from './recognizer.js'

interface Outcome {
  name: string
  words?: readonly string[]
  logp?: number[]
  frames?: number
  classes?: number
  rtf?: number
  error?: string
}

const state = {
  ready: false,
  backend: '',
  outcomes: [] as Outcome[],
  error: '',
}
;(window as unknown as { ktp: typeof state }).ktp = state

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
const status = (text: string) => {
  $('status').textContent = text
}

async function fetchJson(file: string): Promise<unknown> {
  const r = await fetch(file)
  if (!r.ok)
    throw new RecognitionError(`${file}: HTTP ${r.status} from the server; is this an intact ktp export --web site?`)
  try {
    return await r.json()
  } catch {
    throw new RecognitionError(`${file}: not valid JSON`)
  }
}

/** The requested backend, or the first of webgl, wasm, cpu that initialises. */
async function chooseBackend(): Promise<string> {
  setWasmPaths(new URL('./', location.href).href)
  const want = new URLSearchParams(location.search).get('backend')
  for (const b of want ? [want] : ['webgl', 'wasm', 'cpu']) {
    try {
      if ((await tf.setBackend(b)) && tf.getBackend() === b) {
        await tf.ready()
        if (b === 'wasm') installWasmKernelPatches() // same values, less copying (nn/wasm-kernels.ts)
        return b
      }
    } catch {
      // not available here: try the next one
    }
  }
  throw new RecognitionError(`no tfjs backend could start (${want ? `asked for ${want}` : 'tried webgl, wasm, cpu'})`)
}

function section(name: string): HTMLElement {
  const s = document.createElement('section')
  s.className = 'result'
  const h = document.createElement('h2')
  h.textContent = name
  s.append(h)
  $('results').prepend(s)
  return s
}

function line(parent: HTMLElement, cls: string, text: string): HTMLElement {
  const p = document.createElement('p')
  p.className = cls
  p.textContent = text
  parent.append(p)
  return p
}

function show(s: HTMLElement, r: Recognition): void {
  line(s, 'transcript', r.words.length ? r.words.join(' ') : '(no words)')
  const ms = r.ms
  line(
    s,
    'meta',
    `${r.audioSeconds.toFixed(2)} s of audio, ${r.frames} frames; real-time factor ${r.rtf.toFixed(3)} ` +
      `(front end ${ms.features.toFixed(0)} ms, network ${ms.network.toFixed(0)} ms, search ${ms.search.toFixed(0)} ms); ` +
      `backend ${state.backend}${r.reachedFinal ? '' : '; no final state survived the beam: best partial path'}`,
  )
  const c = document.createElement('canvas')
  c.title = 'posteriorgram: frames → , classes ↑, best path in red'
  s.append(c)
  drawPosteriorgram(c, r.logp, r.frames, r.classes, r.path)
}

function fail(s: HTMLElement, name: string, err: unknown): void {
  const msg = err instanceof Error ? err.message : String(err)
  const p = line(s, 'error', msg)
  p.setAttribute('role', 'alert')
  state.outcomes.push({ name, error: msg })
}

/** Recognise one recording already in memory; any failure becomes a message in its section. */
async function run(site: Site, name: string, get: () => Promise<{ samples: Float32Array; rate: number }>) {
  const s = section(name)
  try {
    const { samples, rate } = await get()
    const r = await recognize(site, samples, rate, name)
    show(s, r)
    state.outcomes.push({
      name,
      words: r.words,
      logp: Array.from(r.logp),
      frames: r.frames,
      classes: r.classes,
      rtf: r.rtf,
    })
  } catch (err) {
    fail(s, name, err)
  }
}

async function runFiles(site: Site, files: Iterable<File>): Promise<void> {
  for (const f of files) {
    const utt = f.name.replace(/\.[^.]*$/, '')
    await run(site, utt, async () => readRecording(new Uint8Array(await f.arrayBuffer()), f.name))
  }
}

/**
 * Microphone capture: raw float samples from a ScriptProcessorNode (an AudioWorklet would need a
 * second module file), at the AudioContext's rate, scaled to the int16 range ktp's front end
 * expects (audio/decode.ts), then resampled to the model's rate.
 */
function microphone(site: Site): void {
  const button = $<HTMLButtonElement>('mic')
  let stop: (() => Promise<void>) | null = null
  let takes = 0
  button.disabled = !navigator.mediaDevices?.getUserMedia
  button.onclick = async () => {
    if (stop) {
      const s = stop
      stop = null
      button.textContent = 'Record from the microphone'
      await s()
      return
    }
    let stream: MediaStream
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      })
    } catch (err) {
      fail(section('microphone'), 'microphone', new RecognitionError(`microphone: ${(err as Error).message}`))
      return
    }
    const ctx = new AudioContext()
    const src = ctx.createMediaStreamSource(stream)
    const proc = ctx.createScriptProcessor(4096, 1, 1)
    const chunks: Float32Array[] = []
    proc.onaudioprocess = (e) => chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)))
    src.connect(proc)
    proc.connect(ctx.destination)
    button.textContent = 'Stop and recognise'
    stop = async () => {
      for (const t of stream.getTracks()) t.stop()
      src.disconnect()
      proc.disconnect()
      const from = Math.round(ctx.sampleRate)
      await ctx.close()
      const n = chunks.reduce((a, c) => a + c.length, 0)
      const x = new Float32Array(n)
      let o = 0
      for (const c of chunks) {
        for (let i = 0; i < c.length; i++) x[o + i] = c[i] * 32768
        o += c.length
      }
      const to = modelRate(site)
      await run(site, `microphone-${++takes}`, async () => ({
        samples: from === to ? x : resample(x, from, to),
        rate: to,
      }))
    }
  }
}

function dropZone(site: Site): void {
  const drop = $('drop')
  const input = $<HTMLInputElement>('file')
  let queue = Promise.resolve()
  const take = (files: FileList | null) => {
    const list = [...(files ?? [])]
    queue = queue.then(() => runFiles(site, list))
  }
  input.onchange = () => {
    take(input.files)
    input.value = ''
  }
  drop.ondragover = (e) => {
    e.preventDefault()
    drop.classList.add('over')
  }
  drop.ondragleave = () => drop.classList.remove('over')
  drop.ondrop = (e) => {
    e.preventDefault()
    drop.classList.remove('over')
    take(e.dataTransfer?.files ?? null)
  }
}

async function main(): Promise<void> {
  try {
    state.backend = await chooseBackend()
    const site = await loadSite(fetchJson, (file) => tf.loadLayersModel(file))
    const m = site.manifest
    dropZone(site)
    microphone(site)
    status(
      `Ready: ${m.model.type} student, ${m.model.numClasses} classes, ${modelRate(site)} Hz audio, ` +
        `${site.lm.vocab.length} words; tfjs backend ${state.backend}.`,
    )
    $('about').textContent =
      `Model ${m.source.model} (fingerprint ${m.source.fingerprint.slice(0, 12)}), HMM ${m.source.hmm}, LM ${m.source.lm}; ` +
      `acoustic scale ${m.decoding.acousticScale}, insertion penalty ${m.decoding.insertionPenalty}. Written by ktp export --web.`
    state.ready = true
  } catch (err) {
    state.error = err instanceof Error ? err.message : String(err)
    status(`The page cannot start: ${state.error}`)
    $('status').className = 'error'
  }
}

void main()
