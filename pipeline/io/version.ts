import { readFileSync } from 'node:fs'

/** ktp's version from package.json (recorded in every output's producer metadata). */
function readVersion(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      return JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')).version as string
    } catch {
      /* try the next: the module runs from the source tree or from dist/ */
    }
  }
  return 'unknown'
}

export const KTP_VERSION = readVersion()
