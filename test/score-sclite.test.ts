// Golden tests against REAL sclite output. The fixtures in fixtures/sclite/<case>/ hold ref.trn,
// hyp.trn and what sclite 2.10 (SCTK 2.4.10, Debian `sctk`) printed for them, made by
// fixtures/sclite/make_golden.sh:
//   sclite -r ref.trn trn -h hyp.trn trn -i rm -o sum stdout -f 0      > sum.txt
//   sclite -r ref.trn trn -h hyp.trn trn -i rm -o pralign stdout -f 0  > pra.txt
// sclite is not needed to run this test.
import t from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseTrn } from '../stages/scoring/trn.js'
import { scoreTrn } from '../stages/scoring/score.js'
import { formatSumTable } from '../stages/scoring/report.js'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'sclite')
const cases = fs
  .readdirSync(root)
  .filter((d) => /^\d\d-/.test(d))
  .sort()

interface PraUtt {
  id: string
  counts: number[]
  ops: string
}

/** Parses sclite's pralign dump: id, (#C #S #D #I) and the op of every aligned column. */
function parsePra(text: string): PraUtt[] {
  const out: PraUtt[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const m = /^id: \((.*)\)$/.exec(lines[i]!)
    if (!m) continue
    const counts = /Scores: \(#C #S #D #I\) (\d+) (\d+) (\d+) (\d+)/
      .exec(lines[i + 1]!)!
      .slice(1)
      .map(Number)
    // long alignments are wrapped into several REF/HYP/Eval blocks, continuations prefixed ">> "
    const ref: string[] = [],
      hyp: string[] = []
    for (let j = i + 2; j < lines.length && !lines[j]!.startsWith('id: '); j++) {
      const l = lines[j]!.replace(/^>> /, '')
      if (l.startsWith('REF:')) ref.push(...l.slice(4).trim().split(/\s+/).filter(Boolean))
      if (l.startsWith('HYP:')) hyp.push(...l.slice(4).trim().split(/\s+/).filter(Boolean))
    }
    let ops = ''
    for (let k = 0; k < Math.max(ref.length, hyp.length); k++) {
      const r = ref[k] ?? '',
        h = hyp[k] ?? ''
      if (/^\*+$/.test(r)) ops += 'I'
      else if (/^\*+$/.test(h)) ops += 'D'
      else ops += r.toLowerCase() === h.toLowerCase() ? 'C' : 'S'
    }
    out.push({ id: m[1]!, counts, ops })
  }
  return out
}

/** The table part of sclite's sum output: from the heading to the bottom border. */
function sumTable(text: string): string {
  const lines = text.split('\n')
  const a = lines.findIndex((l) => l.includes('SYSTEM SUMMARY PERCENTAGES by SPEAKER'))
  const b = lines.findIndex((l) => /^\s*`-+'$/.test(l))
  return `${lines.slice(a, b + 1).join('\n')}\n`
}

t.ok(cases.length >= 12, `at least 12 golden cases (${cases.length})`)

for (const c of cases) {
  t.test(c, async (t) => {
    const dir = path.join(root, c)
    const refs = parseTrn(fs.readFileSync(path.join(dir, 'ref.trn'), 'utf8'), {}, 'ref.trn')
    const hyps = parseTrn(fs.readFileSync(path.join(dir, 'hyp.trn'), 'utf8'), {}, 'hyp.trn')
    const res = scoreTrn(refs, hyps)

    // per utterance: counts and the exact operation sequence sclite chose
    const pra = parsePra(fs.readFileSync(path.join(dir, 'pra.txt'), 'utf8'))
    t.equal(res.utterances.length, pra.length, 'same number of scored utterances')
    const mine = new Map(res.utterances.map((u) => [u.id, u]))
    for (const p of pra) {
      const u = mine.get(p.id)
      t.ok(u, `utterance ${p.id} scored`)
      if (!u) continue
      t.same([u.corr, u.sub, u.del, u.ins], p.counts, `${p.id} C/S/D/I`)
      t.equal(u.pairs.map((x) => x.op).join(''), p.ops, `${p.id} alignment`)
    }

    // the whole sum table, byte for byte (numbers, rounding, speaker order, layout)
    const golden = sumTable(fs.readFileSync(path.join(dir, 'sum.txt'), 'utf8'))
    t.equal(formatSumTable(res, 'hyp.trn'), golden, 'sum table matches sclite')
  })
}
