import { readFileSync } from 'node:fs'
import { Message } from 'apache-arrow/ipc/metadata/message'
const good = readFileSync('/tmp/ktp-fz/f1.arrow')
// find message starts (continuation markers)
let pos = 8
const starts = []
for (let i = 8; i < good.length - 8; i++) if (good.readInt32LE(i) === -1) starts.push(i)
console.log(starts)
for (const s of starts) {
  const len = good.readInt32LE(s + 4)
  if (s <= 1266 && 1266 < s + 8 + len + 200) console.log('msg at', s, 'metaLen', len, 'rel', 1266 - s - 8)
}
