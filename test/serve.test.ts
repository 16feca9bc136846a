// ktp serve: the MIME types a browser needs (application/wasm for streaming compilation, JavaScript
// for ES modules, JSON), index.html for '/', nothing outside the site, and an actionable error for
// a directory that is not a site. fileFor is checked directly for path traversal.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileFor } from '../pipeline/cli/serve-command.js'
import { CLI, ktp, tmp } from './helpers.js'

const D = tmp('ktp-serve-')
const site = join(D, 'site')
mkdirSync(join(site, 'model'), { recursive: true })
writeFileSync(join(site, 'index.html'), '<!doctype html><title>t</title>')
writeFileSync(join(site, 'page.js'), 'export {}\n')
writeFileSync(join(site, 'x.wasm'), Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]))
writeFileSync(join(site, 'model', 'model.json'), '{}\n')
writeFileSync(join(D, 'secret.txt'), 'outside the site\n')

t.test('fileFor keeps to the site', async (t) => {
  t.equal(fileFor(site, '/'), join(site, 'index.html'))
  t.equal(fileFor(site, '/model/model.json?x=1'), join(site, 'model', 'model.json'))
  t.equal(fileFor(site, '/../secret.txt'), null, '..')
  t.equal(fileFor(site, '/%2e%2e/secret.txt'), null, 'encoded ..')
  t.equal(fileFor(site, '/model'), null, 'a directory is not a file')
  t.equal(fileFor(site, '/%E0%A4%A'), null, 'bad escape')
})

t.test('ktp serve: MIME types, 404 outside, HEAD', async (t) => {
  const proc = spawn(process.execPath, [CLI, 'serve', site, '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] })
  t.teardown(async () => {
    proc.kill()
    await new Promise((resolve) => proc.once('exit', resolve))
  })
  const url = await new Promise<string>((resolve, reject) => {
    let err = ''
    proc.stderr.on('data', (d) => {
      err += String(d)
      const m = /http:\/\/127\.0\.0\.1:\d+\//.exec(err)
      if (m) resolve(m[0])
    })
    proc.on('exit', (c) => reject(new Error(`exited ${c}: ${err}`)))
  })
  const type = async (path: string) => (await fetch(url + path)).headers.get('content-type')
  t.equal(await type(''), 'text/html; charset=utf-8')
  t.equal(await type('page.js'), 'text/javascript; charset=utf-8')
  t.equal(await type('x.wasm'), 'application/wasm')
  t.equal(await type('model/model.json'), 'application/json; charset=utf-8')
  t.equal((await fetch(`${url}../secret.txt`)).status, 404)
  t.equal((await fetch(`${url}%2e%2e/secret.txt`)).status, 404)
  t.equal((await fetch(`${url}x.wasm`, { method: 'POST' })).status, 405)
  const head = await fetch(`${url}x.wasm`, { method: 'HEAD' })
  t.equal(head.headers.get('content-length'), '8')
})

t.test('ktp serve on a directory without index.html: exit 2, one line', async (t) => {
  const r = ktp(['serve', D, '--port', '0'])
  t.equal(r.code, 2)
  t.match(r.stderr, /no index\.html; expected a site written by ktp export --web/)
})
