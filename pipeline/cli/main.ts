#!/usr/bin/env node
/**
 * The `ktp` executable (package.json "bin"). It runs the bundle `npm run build` makes of the CLI
 * (dist/pipeline/bundle/, see bundle.ts), else the modules tsc compiled (./ktp.js): the same
 * code, but Node 20 spends most of a second of CPU loading the ~340 separate ES modules of yargs,
 * zod and Arrow that `ktp features` needs, and a fraction of that on a handful of bundled files.
 * A bundle older than the compiled modules (tsc run alone after a change) is stale and not used.
 * Running from the sources (a TS loader) always takes the sources.
 */
import { statSync } from 'node:fs'

function bundleIfFresh(): URL | null {
  if (import.meta.url.endsWith('.ts')) return null
  const bundle = new URL('../bundle/ktp.js', import.meta.url)
  try {
    return statSync(bundle).mtimeMs >= statSync(new URL('./ktp.js', import.meta.url)).mtimeMs ? bundle : null
  } catch {
    return null
  }
}

const bundle = bundleIfFresh()
if (bundle) await import(bundle.href)
else await import('./ktp.js')
