/**
 * Bundle the CLI with esbuild into dist/pipeline/bundle/ (run by `npm run build`, after tsc): the
 * entry ktp.js, the two worker entries, and shared chunks, code-split at the CLI's dynamic imports
 * so each command still loads only its own code. Why: Node 20 has no module compile cache, and
 * resolving, reading and compiling the ~340 small ES modules of yargs, zod and apache-arrow that
 * `ktp features` loads cost most of a second of CPU per process, paid by every stage of a pipe.
 *
 * Paths the code finds from its own file (import.meta.url) keep working because the bundle sits
 * two levels under dist/, as the compiled modules do: ../../web/ (export), the package.json walk
 * (version), ../cli/main.js (recipes), and ./features-worker.js, ./worker-entry.js (the worker
 * entries are bundle entries, so they land beside the chunks that start them).
 * Packages with native code, wasm files found next to their modules, or size without start-up
 * weight (tfjs, onnxruntime, vega, esbuild itself) stay external and load from node_modules.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Plugin, build } from 'esbuild'

const HERE = dirname(fileURLToPath(import.meta.url))
/** The repository root (this file runs from dist/pipeline/cli/ or, through a TS loader, pipeline/cli/). */
const ROOT = HERE.includes(join('dist', 'pipeline')) ? join(HERE, '..', '..', '..') : join(HERE, '..', '..')

export const BUNDLE_DIR = join(ROOT, 'dist', 'pipeline', 'bundle')

/** Packages bundled: pure JavaScript, many small modules, loaded by most commands. */
const BUNDLED = new Set(['apache-arrow', 'flatbuffers', 'tslib', 'zod', 'highland', 'fft.js', 'yaml', 'cli-progress'])
const YARGS =
  /^(yargs|yargs-parser|cliui|y18n|escalade|get-caller-file|string-width|strip-ansi|ansi-regex|wrap-ansi|ansi-styles|emoji-regex|get-east-asian-width)$/

function packageOf(spec: string): string {
  const parts = spec.split('/')
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]
}

/** Every bare import outside the bundled set stays an import from node_modules. */
const externals: Plugin = {
  name: 'ktp-externals',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (a) => {
      if (a.path.startsWith('node:')) return { path: a.path, external: true }
      const pkg = packageOf(a.path)
      return BUNDLED.has(pkg) || YARGS.test(pkg) ? undefined : { path: a.path, external: true }
    })
  },
}

/**
 * yargs finds its locale files and package root from its own module's URL; in a bundle that URL is
 * the chunk's. Point it back at the installed yargs, so messages in other languages and the
 * package.json lookup behave exactly as unbundled.
 */
const yargsShim: Plugin = {
  name: 'ktp-yargs-shim',
  setup(b) {
    b.onLoad({ filter: /yargs[\\/]lib[\\/]platform-shims[\\/]esm\.mjs$/ }, (a) => {
      const from = 'const __dirname = fileURLToPath(import.meta.url);'
      const text = readFileSync(a.path, 'utf8')
      if (!text.includes(from)) throw new Error(`${a.path}: the line to patch (${from}) is gone; update bundle.ts`)
      const to =
        "const __dirname = fileURLToPath(new URL('./lib/platform-shims/esm.mjs', import.meta.resolve('yargs')));"
      return { contents: text.replace(from, to), loader: 'js' }
    })
  },
}

export async function buildCliBundle(outDir = BUNDLE_DIR): Promise<void> {
  rmSync(outDir, { recursive: true, force: true })
  await build({
    entryPoints: {
      ktp: join(ROOT, 'pipeline', 'cli', 'ktp.ts'),
      'features-worker': join(ROOT, 'stages', 'dsp', 'features-worker.ts'),
      'worker-entry': join(ROOT, 'stages', 'train', 'worker-entry.ts'),
    },
    outdir: outDir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: ['node20'],
    // Syntax and whitespace only: names stay, so stack traces and profiles stay readable.
    minifySyntax: true,
    minifyWhitespace: true,
    sourcemap: 'linked',
    sourcesContent: false,
    legalComments: 'none',
    logLevel: 'warning',
    // CommonJS packages inside an ES module bundle call require() for Node's built-ins.
    banner: {
      js: "import { createRequire as __ktpRequire } from 'node:module'; const require = __ktpRequire(import.meta.url);",
    },
    plugins: [externals, yargsShim],
  })
  if (!existsSync(join(outDir, 'ktp.js'))) throw new Error(`esbuild wrote no ${join(outDir, 'ktp.js')}`)
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await buildCliBundle()
