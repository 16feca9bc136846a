// TextTable, the compact form readDataDir holds wav.scp, utt2spk and text in: the same lines,
// values, errors and orders as parseTable into a Map (what it replaced), and no per-line objects
// on the V8 heap, which made the peak of `ktp features` grow with the number of utterances.
import t, { type Test } from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { getHeapStatistics, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { tmp } from './helpers.js'
import type { KtpError } from '../schemas/errors.js'
import { TextTable } from '../stages/formats/text-table.js'
import { dataDirInput } from '../stages/formats/kaldi-datadir.js'
import { cCompare, parseTable, sortedEntries, sortedKeys, utf16SortedEntries } from '../stages/formats/kaldi-tables.js'
import { formatDataDir, readDataDir, spk2uttRuns, spk2utt, type DataDirMaps } from '../stages/formats/datadir-io.js'

/** parseTable's result, or its error message. */
function viaParseTable(bytes: Buffer): { rows?: ReturnType<typeof parseTable>; err?: string } {
  try {
    return { rows: parseTable(bytes.toString('utf8'), 'T') }
  } catch (e) {
    return { err: (e as KtpError).message }
  }
}

function checkTable(t: Test, bytes: Buffer, what: string): boolean {
  const want = viaParseTable(bytes)
  let table: TextTable
  try {
    table = TextTable.parse(bytes, 'T')
  } catch (e) {
    return t.equal((e as KtpError).message, want.err, `${what}: the same error`)
  }
  if (want.err) return t.fail(`${what}: parseTable fails (${want.err}), TextTable does not`)
  const rows = want.rows!
  const map = new Map(rows.map((l) => [l.key, l.rest]))
  let ok = t.same([...table.rows()], rows, `${what}: lines`)
  ok &&= t.same([...table.entries()], [...map], `${what}: entries in file order`)
  ok &&= t.equal(table.size, map.size)
  const absent = ['', 'zz', '\u00e9x', ...rows.map((l) => `${l.key}x`), ...rows.map((l) => l.key.slice(0, -1))]
  for (const k of [...map.keys(), ...absent]) {
    ok &&= t.equal(table.get(k), map.get(k), `${what}: get ${JSON.stringify(k)}`)
    ok &&= t.equal(table.has(k), map.has(k), `${what}: has ${JSON.stringify(k)}`)
  }
  ok &&= t.same(sortedKeys(table), [...map.keys()].sort(cCompare), `${what}: C order`)
  ok &&= t.same([...sortedEntries(table)], [...sortedEntries(map)], `${what}: entries in C order`)
  ok &&= t.same(
    [...utf16SortedEntries(table)],
    [...map.keys()].sort().map((k) => [k, map.get(k)]),
    `${what}: entries in JS sort() order`,
  )
  return ok
}

t.test('reads what parseTable reads, into what a Map of the lines holds', async (t) => {
  const cases: [string, Buffer][] = [
    ['sorted', Buffer.from('a /x.wav\nb /y.wav\n')],
    ['unsorted, blank lines, no final newline', Buffer.from('c 3\n\n  \nb 2\r\na   1  \t\nd')],
    ['CRLF, tabs, empty values', Buffer.from('k1\tv one\r\nk2\r\nk3  \r\n\r\n')],
    ['U+2028 and a stray CR inside values', Buffer.from('a x\u2028y\nb p\rq\n')],
    ['non-breaking spaces and U+3000 are whitespace', Buffer.from('\u00a0a\u00a0v\u3000w\u3000\nb c\n')],
    ['non-ASCII keys and values', Buffer.from('é 1\nz 2\nｚ 3\n😀 4\n日本 語 ok\n\ud7ff 5\n')],
    ['keys differing above U+D7FF', Buffer.from('\uffff a\n😀 b\n\ue000 c\n')],
    ['duplicate key', Buffer.from('a 1\nb 2\na 3\n')],
    ['duplicates: the first repeat in file order is reported', Buffer.from('b 1\na 1\nc 1\na 2\nb 2\n')],
    ['duplicate non-ASCII key', Buffer.from('é 1\né 2\n')],
    ['a BOM is whitespace to the line grammar', Buffer.from('\ufeffa 1\na 2\n')],
    [
      'invalid UTF-8 (decoded as U+FFFD, as when the file is read as text)',
      Buffer.concat([
        Buffer.from('a\xff 1\nb '),
        Buffer.from([0xe2, 0x82]),
        Buffer.from(' 2\n'),
        Buffer.from([0xf0, 0x9f, 0x98, 0x20, 0x33, 0x0a]),
      ]),
    ],
    [
      'invalid UTF-8 keys that decode alike are duplicates',
      Buffer.from([0x61, 0xff, 0x20, 0x31, 0x0a, 0x61, 0xfe, 0x20, 0x32, 0x0a]),
    ],
    ['empty', Buffer.alloc(0)],
  ]
  for (const [what, bytes] of cases) checkTable(t, bytes, what)
})

t.test('random tables: the same as parseTable into a Map', async (t) => {
  const pieces = [
    'a',
    'b',
    'A',
    '_',
    '-',
    'é',
    'ｚ',
    '😀',
    '\ud7ff',
    '\ue000',
    ' ',
    '\t',
    '\u00a0',
    '\r',
    '\u2028',
    '\n',
  ]
  const raw = [[0xff], [0xe2, 0x82], [0xc3]]
  let seed = 7
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0
    return seed % n
  }
  let bad = 0
  let failed = 0
  for (let i = 0; i < 1500 && bad < 3; i++) {
    const parts: Buffer[] = []
    for (let j = rand(40); j > 0; j--) {
      // keys short and from few letters, so that repeats (errors) and shared prefixes occur
      parts.push(rand(30) === 0 ? Buffer.from(raw[rand(raw.length)]) : Buffer.from(pieces[rand(pieces.length)]))
      if (rand(4) === 0) parts.push(Buffer.from(`${'abc'[rand(3)]}${rand(4)} v\n`))
    }
    const bytes = Buffer.concat(parts)
    if (viaParseTable(bytes).err) failed++
    if (!checkTable(t, bytes, `table ${i} ${JSON.stringify(bytes.toString('latin1'))}`)) bad++
  }
  t.equal(bad, 0)
  t.ok(failed > 50 && failed < 1400, `both errors and tables in the sample (${failed} errors)`)
})

t.test('spk2uttRuns is spk2utt, a speaker at a time, whether or not ids sort with speakers', async (t) => {
  const sorted = new Map([
    ['s1-a', 's1'],
    ['s1-b', 's1'],
    ['s2-a', 's2'],
    ['s3-z', 's3'],
  ])
  const unsorted = new Map([
    ['u1', 'zed'],
    ['u2', 'amy'],
    ['u3', 'zed'],
    ['u4', 'bob'],
    ['u5', 'amy'],
  ])
  for (const [what, m] of [
    ['speaker-prefixed ids', sorted],
    ['ids that do not sort with speakers', unsorted],
  ] as const) {
    const groups: [string, string[]][] = []
    for (const [s, us] of spk2uttRuns(m)) groups.push([s, [...us]])
    t.same(groups, [...spk2utt(m)], what)
    // a caller that leaves a speaker's ids untaken still gets the next speaker
    t.same(
      [...spk2uttRuns(m)].map(([s]) => s),
      [...spk2utt(m).keys()],
      `${what}: speakers only`,
    )
  }
  // ids are taken as the speakers are walked: a caller that holds on to an earlier speaker is told so
  t.throws(() => [...spk2uttRuns(sorted)].map(([, us]) => [...us]), /taken after the next speaker/)
})

t.test("a data dir's tables keep no per-utterance objects on the V8 heap, and few bytes off it", async (t) => {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const n = 100_000
  const d = tmp('ktp-big-datadir-')
  const utt = (i: number) => `spk${i % 10}-utt${String(i).padStart(6, '0')}`
  const ids = Array.from({ length: n }, (_, i) => utt(i)).sort(cCompare)
  const files = {
    'wav.scp': ids.map((u) => `${u} /no/such/dir/rec${u.slice(-3)}.wav\n`).join(''),
    utt2spk: ids.map((u) => `${u} ${u.slice(0, 4)}\n`).join(''),
    text: ids.map((u) => `${u} some words\n`).join(''),
  }
  for (const [name, text] of Object.entries(files)) writeFileSync(join(d, name), text)
  const bytes = Object.values(files).reduce((s, x) => s + Buffer.byteLength(x), 0)
  // V8 frees dead ArrayBuffers' memory on a background sweeper thread, after gc() returns: on a
  // busy machine (CI runs two test files at once on 2 cores) a reading taken at once still counted
  // ~6 MB of freed read buffers. So collect until the off-heap figure stops falling.
  const settled = async () => {
    let off = Number.POSITIVE_INFINITY
    for (let i = 0; i < 20; i++) {
      gc()
      await new Promise((r) => setTimeout(r, 20))
      const now = process.memoryUsage().arrayBuffers
      if (now >= off) break
      off = now
    }
    return { heap: getHeapStatistics().used_heap_size, off }
  }
  const before = await settled()
  const input = await dataDirInput(d, { hashCache: false })
  const after = await settled()
  const heap = after.heap - before.heap
  const off = after.off - before.off
  t.equal(input.total, n)
  // a Map per table held ~300 bytes an utterance (30 MB here), the eager manifest rows ~100 more
  t.ok(heap < 2 * 2 ** 20, `V8 heap held for ${n} utterances: ${(heap / 2 ** 20).toFixed(2)} MB`)
  // the files' bytes, 5 offsets and a position per line
  t.ok(
    off < bytes + n * 3 * 24 + 2 ** 20,
    `off the heap: ${(off / 2 ** 20).toFixed(1)} MB for ${bytes} bytes of tables`,
  )
  // and it reads as before
  const asMaps: DataDirMaps = {
    wav: new Map(input.data.wav),
    utt2spk: new Map(input.data.utt2spk),
    text: new Map(input.data.text!),
    segments: null,
    utt2dur: null,
  }
  t.same(formatDataDir(input.data), formatDataDir(asMaps))
  t.equal(formatDataDir(readDataDir(d).data)['wav.scp'], files['wav.scp'])
})

t.test('spk2utt is checked against each speaker digest with the messages it had as lists', async (t) => {
  // messages as the check that held every speaker's list gave them (main before TextTable)
  const cases: [string, Record<string, string>, string][] = [
    [
      'more than five ids',
      {
        'wav.scp': 's-1 /a\ns-2 /a\ns-3 /a\ns-4 /a\ns-5 /a\ns-6 /a\ns-7 /a\n',
        utt2spk: 's-1 s\ns-2 s\ns-3 s\ns-4 s\ns-5 s\ns-6 s\ns-7 s\n',
        spk2utt: 's s-7 s-6 s-5 s-4 s-3 s-2\n',
      },
      "D/spk2utt:1: speaker 's' lists [s-2 s-3 s-4 s-5 s-6 …] but utt2spk gives [s-1 s-2 s-3 s-4 s-5 …]; delete spk2utt to have it derived",
    ],
    [
      'a speaker utt2spk has not',
      { 'wav.scp': 'a /a\nb /a\n', utt2spk: 'a x\nb y\n', spk2utt: 'x a\nq b\n' },
      "D/spk2utt:2: speaker 'q' lists [b] but utt2spk gives []; delete spk2utt to have it derived",
    ],
    [
      'a speaker missing',
      { 'wav.scp': 'a /a\nb /a\n', utt2spk: 'a x\nb y\n', spk2utt: 'x a\n' },
      "D/spk2utt: speaker 'y' of utt2spk is missing; delete spk2utt to have it derived",
    ],
  ]
  for (const [what, files, message] of cases) {
    const d = tmp('ktp-spk2utt-')
    for (const [n, c] of Object.entries(files)) writeFileSync(join(d, n), c)
    t.throws(() => readDataDir(d), { message: message.replace('D/', `${d}/`) }, what)
  }
  // ids that do not sort with their speakers: spk2utt in any order is fine, with the warning
  const d = tmp('ktp-spk2utt-')
  const files = { 'wav.scp': 'a /a\nb /a\nc /a\n', utt2spk: 'a y\nb x\nc y\n', spk2utt: 'y c a\nx b\n' }
  for (const [n, c] of Object.entries(files)) writeFileSync(join(d, n), c)
  t.same(readDataDir(d).warnings, [
    `${d}/utt2spk: utterance ids do not sort with their speakers (Kaldi's validate_data_dir.sh wants speaker-prefixed ids)`,
  ])
  t.equal(formatDataDir(readDataDir(d).data).spk2utt, 'x b\ny a c\n')
})
