#!/usr/bin/env node
/**
 * The `ktp` executable (package.json "bin"). It runs the bundle `npm run build` makes of the CLI
 * (dist/pipeline/bundle/, see bundle.ts) when there is one, else the modules tsc compiled
 * (./ktp.js): the same code, but Node 20 loads the ~340 separate ES modules of yargs, zod and
 * Arrow that `ktp features` needs in most of a second of CPU, and a handful of bundled files in a
 * fraction of it. Running from the sources (a TS loader) always takes the sources.
 */
import { existsSync } from 'node:fs'

const bundled = new URL('../bundle/ktp.js', import.meta.url)
if (!import.meta.url.endsWith('.ts') && existsSync(bundled)) await import(bundled.href)
else await import('./ktp.js')
