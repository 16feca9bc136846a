/**
 * Bundle the page of `ktp export --web` (page.ts and everything it imports: ktp's DSP, HMM and
 * decoder, tfjs and its wasm backend) into one minified ES module with esbuild, beside
 * index.html, in dist/web/. Run by `npm run build`; `ktp export --web` copies the result.
 */
import { copyFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

/** The repository root (this file runs from dist/stages/web/ or, through a TS loader, stages/web/). */
const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = HERE.includes(`${join('dist', 'stages')}`) ? join(HERE, '..', '..', '..') : join(HERE, '..', '..')

/** Where the built page lives (what export copies). */
export const WEB_DIST = join(ROOT, 'dist', 'web')

export async function buildPage(outDir = WEB_DIST): Promise<void> {
  mkdirSync(outDir, { recursive: true })
  await build({
    entryPoints: [join(ROOT, 'stages', 'web', 'page.ts')],
    outfile: join(outDir, 'page.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    minify: true,
    legalComments: 'linked',
    logLevel: 'warning',
    // tfjs' wasm glue mentions Node modules behind runtime checks it never takes in a browser
    external: ['fs', 'path', 'worker_threads', 'perf_hooks', 'os', 'crypto', 'util'],
  })
  copyFileSync(join(ROOT, 'stages', 'web', 'index.html'), join(outDir, 'index.html'))
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await buildPage()
