import { createReadStream, statSync } from 'node:fs'
import { createServer } from 'node:http'
import { extname, join, normalize, resolve, sep } from 'node:path'
import { z } from 'zod'
import { stoppable } from '../io/signals.js'
import { KtpError } from '../../schemas/errors.js'
import { defineCommand } from '../io/command.js'

/**
 * `ktp serve SITE`: a small static file server for a `ktp export --web` site (any static server
 * does; this one needs nothing installed and gets the MIME types right: browsers compile
 * WebAssembly by streaming only when it is served as application/wasm, and ES modules must be
 * served as JavaScript). GET and HEAD only, files under SITE only, localhost by default.
 */
const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.bin': 'application/octet-stream',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.txt': 'text/plain; charset=utf-8',
  '.wav': 'audio/wav',
}

export const serveOptions = z.object({
  port: z.number().int().min(0).max(65535).default(8080).describe('TCP port (0: any free port)'),
  host: z.string().default('127.0.0.1').describe('address to listen on (127.0.0.1: this machine only)'),
})

/** The file under `root` a URL path names, or null (outside the root, or not a file). */
export function fileFor(root: string, urlPath: string): string | null {
  let path: string
  try {
    path = decodeURIComponent(urlPath.split('?')[0].split('#')[0])
  } catch {
    return null
  }
  const file = normalize(join(root, path.endsWith('/') ? `${path}index.html` : path))
  if (file !== root && !file.startsWith(root + sep)) return null
  try {
    return statSync(file).isFile() ? file : null
  } catch {
    return null
  }
}

export const serveCommand = defineCommand({
  command: 'serve <site>',
  describe: 'serve a ktp export --web site on this machine (a small static server with the right MIME types)',
  options: serveOptions,
  positionals: { site: z.string().describe('the site directory (ktp export --web -o SITE)') },
  examples: [['ktp serve exp/fsdd/web', 'then open the address it prints']],
  run: ({ options, site }) => {
    const root = resolve(site)
    if (!fileFor(root, '/index.html'))
      throw new KtpError('no-file', `${site}: no index.html; expected a site written by ktp export --web`)
    const server = createServer((req, res) => {
      const file = req.method === 'GET' || req.method === 'HEAD' ? fileFor(root, req.url ?? '/') : null
      if (!file) {
        res.writeHead(req.method === 'GET' || req.method === 'HEAD' ? 404 : 405, { 'content-type': MIME['.txt'] })
        res.end('not found\n')
        return
      }
      res.writeHead(200, {
        'content-type': MIME[extname(file).toLowerCase()] ?? 'application/octet-stream',
        'content-length': statSync(file).size,
        'cache-control': 'no-cache',
      })
      if (req.method === 'HEAD') res.end()
      else createReadStream(file).pipe(res)
    })
    // Ctrl-C (or SIGTERM) is how a server ends: it closes and the command exits 0
    return stoppable(
      () => {},
      (signal) =>
        new Promise<number>((done, fail) => {
          server.once('error', (err: NodeJS.ErrnoException) =>
            fail(
              new KtpError(
                'usage',
                err.code === 'EADDRINUSE' ? `--port ${options.port}: already in use (try --port 0)` : err.message,
              ),
            ),
          )
          server.listen(options.port, options.host, () => {
            const a = server.address()
            const port = typeof a === 'object' && a ? a.port : options.port
            const host = options.host.includes(':') ? `[${options.host}]` : options.host
            process.stderr.write(`ktp serve: ${root} at http://${host}:${port}/ (Ctrl-C stops)\n`)
          })
          const stop = () => {
            server.close(() => done(0))
            server.closeAllConnections() // keep-alive sockets would hold the close open
          }
          signal.requested.then(stop)
        }),
    )
  },
})
