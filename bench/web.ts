/**
 * In-page figures of a `ktp export --web` site: `node dist/bench/web.js SITE WAV... [--out FILE]`.
 *
 * Serves SITE with `ktp serve`, opens it in this machine's Chromium (/usr/bin/chromium, headless,
 * through playwright-core) once per backend (wasm, then the page's own choice), recognises the
 * recordings twice (the first pass warms tfjs up and is not counted) and reports: the bytes of the
 * page bundle, of the tfjs wasm binary the page loads, and of the model; and the real-time factor
 * of the second pass (processing time in the page over audio duration, front end + network +
 * search). One JSON object on stdout, and in --out (default bench/results/web.json).
 */
import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const CLI = join(ROOT, 'dist', 'pipeline', 'cli', 'main.js')
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run']

interface Outcome {
  name: string
  rtf?: number
  error?: string
}

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  const o = args.indexOf('--out')
  const out = o >= 0 ? args.splice(o, 2)[1] : join(ROOT, 'bench', 'results', 'web.json')
  const [site, ...wavs] = args
  if (!site || wavs.length === 0) throw new Error('usage: node dist/bench/web.js SITE WAV... [--out FILE]')
  const server = spawn(process.execPath, [CLI, 'serve', site, '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] })
  const url = await new Promise<string>((resolve, reject) => {
    let err = ''
    server.stderr.on('data', (d) => {
      err += String(d)
      const m = /http:\/\/\S+\//.exec(err)
      if (m) resolve(m[0])
    })
    server.on('exit', () => reject(new Error(`ktp serve: ${err}`)))
  })
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: FLAGS })
  const audioSeconds = wavs.reduce((a, w) => a + (statSync(w).size - 44) / 2 / 8000, 0)
  const runs: Record<string, unknown>[] = []
  try {
    for (const query of ['?backend=wasm', '']) {
      const page = await browser.newPage()
      await page.goto(`${url}${query}`)
      await page.waitForFunction(() => (window as unknown as { ktp?: { ready: boolean } }).ktp?.ready, null, {
        timeout: 120_000,
      })
      const backend = await page.evaluate(() => (window as unknown as { ktp: { backend: string } }).ktp.backend)
      let last: Outcome[] = []
      for (let pass = 0; pass < 2; pass++) {
        await page.setInputFiles('#file', wavs)
        await page.waitForFunction(
          (n) => (window as unknown as { ktp: { outcomes: unknown[] } }).ktp.outcomes.length >= n,
          (pass + 1) * wavs.length,
          { timeout: 600_000 },
        )
        const all = await page.evaluate(() => (window as unknown as { ktp: { outcomes: Outcome[] } }).ktp.outcomes)
        last = all.slice(pass * wavs.length)
      }
      const failed = last.filter((x) => x.error)
      if (failed.length) throw new Error(`${failed[0].name}: ${failed[0].error}`)
      const rtfs = last.map((x) => x.rtf!).sort((a, b) => a - b)
      runs.push({ backend, rtf_median: rtfs[Math.floor(rtfs.length / 2)], rtf_each: last.map((x) => x.rtf) })
      await page.close()
    }
  } finally {
    await browser.close()
    server.kill()
  }
  const size = (f: string) => statSync(join(site, f)).size
  const result = {
    name: 'web',
    site: basename(site),
    model: JSON.parse(readFileSync(join(site, 'site.json'), 'utf8')).model,
    bundle_bytes: size('page.js'),
    wasm_bytes_simd: size('tfjs-backend-wasm-simd.wasm'),
    model_bytes: size('model/model.json') + size('model/weights.bin'),
    recordings: wavs.length,
    audio_seconds: Math.round(audioSeconds * 100) / 100,
    runs,
    chromium: await chromiumVersion(),
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model,
    date: new Date().toISOString(),
  }
  mkdirSync(dirname(out), { recursive: true })
  writeFileSync(out, `${JSON.stringify(result, null, 1)}\n`)
  process.stdout.write(`${JSON.stringify(result)}\n`)
}

async function chromiumVersion(): Promise<string> {
  const b = await chromium.launch({ executablePath: '/usr/bin/chromium', args: FLAGS })
  const v = b.version()
  await b.close()
  return v
}

await main()
