/**
 * `decode`: real-time factor of `ktp decode` on held-out connected FSDD digits, as the decoder
 * reports it ("real-time factor R (search alone S)" on stderr). Set-up (not timed): connected
 * digits from FSDD (`ktp connect-digits --max-per-speaker 40`), 40-bin fbank, global CMVN, a
 * 5-state whole-word digit HMM with silence, flat-start frame labels, and a tiny DNN
 * (440-256-55, 3 epochs, no tuning: a plausible acoustic model, not a good one). Timed:
 *
 *   ktp infer --model DNN test.arrow --top-k 0 --dtype f32 | ktp decode --hmm HMM --lm uniform -
 *
 * `ktp` = the RTF decode reports for that pipe (its wall time includes waiting for infer);
 * extras: the RTF decoding the same log-posteriors from a file, the search-alone RTF, and the WER
 * (for orientation only: the model is deliberately tiny). Best of `reps` runs. No reference:
 * `ratio` is 1/RTF (how many times faster than real time).
 */
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { type BenchLine, CLI, type HarnessOptions, ROOT, ktp, round, tmpDir } from './common.js'

export interface DecodeBenchOptions {
  maxPerSpeaker?: number
  epochs?: number
  reps?: number
}

interface DecodeRun {
  rtf: number
  search: number
  audio: number
  done: number
  failed: number
  stderr: string
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

function parseDecode(stderr: string): DecodeRun | null {
  const m =
    /done (\d+), failed (\d+); ([\d.]+) s of audio in [\d.]+ s, real-time factor ([\d.e+-]+)(?: \(search alone ([\d.e+-]+)\))?/.exec(
      stderr,
    )
  if (!m) return null
  return {
    done: Number(m[1]),
    failed: Number(m[2]),
    audio: Number(m[3]),
    rtf: Number(m[4]),
    search: Number(m[5] ?? NaN),
    stderr,
  }
}

function runDecode(cmd: string): DecodeRun {
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', cmd], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 26 })
  const d = parseDecode(r.stderr)
  if (!d) throw new Error(`decode printed no real-time factor (exit ${r.status}): ${r.stderr.trim().slice(-1500)}`)
  return d
}

export async function benchDecode(h: HarnessOptions, o: DecodeBenchOptions = {}): Promise<BenchLine[]> {
  const dir = tmpDir('ktp-bench-decode-')
  const reps = o.reps ?? (h.quick ? 1 : 3)
  const D = join(dir, 'digits')
  h.log('decode: set-up (connect-digits, features, CMVN, HMM, flat start, tiny DNN)')
  await ktp([
    'connect-digits',
    join(ROOT, 'fixtures/fsdd'),
    '-o',
    D,
    '--max-per-speaker',
    String(o.maxPerSpeaker ?? (h.quick ? 8 : 40)),
  ])
  for (const s of ['train', 'test']) {
    await ktp([
      'features',
      join(D, s),
      '--num-mel-bins',
      '40',
      '--dither',
      '0',
      '--quiet',
      '-o',
      join(dir, `${s}.raw.arrow`),
    ])
  }
  await ktp(['cmvn', 'compute', join(dir, 'train.raw.arrow'), '-o', join(dir, 'cmvn.json')])
  for (const s of ['train', 'test']) {
    await ktp([
      'cmvn',
      'apply',
      '--stats',
      join(dir, 'cmvn.json'),
      join(dir, `${s}.raw.arrow`),
      '--quiet',
      '-o',
      join(dir, `${s}.arrow`),
    ])
  }
  const hmm = join(dir, 'hmm.json')
  await ktp(['hmm-init', '--whole-word-digits', '--states', '5', '--silence', 'sil', '-o', hmm])
  await ktp([
    'align',
    '--flat-start',
    '--hmm',
    hmm,
    '--text',
    join(D, 'train/text'),
    '--feats',
    join(dir, 'train.arrow'),
    '--ctm',
    join(D, 'train/words.ctm'),
    '--quiet',
    '-o',
    join(dir, 'ali.arrow'),
  ])
  const dnn = join(dir, 'dnn')
  await ktp([
    'train',
    '--feats',
    join(dir, 'train.arrow'),
    '--labels',
    join(dir, 'ali.arrow'),
    '--model',
    '{"type":"dnn","hidden":[256],"activation":"sigmoid"}',
    '--max-epochs',
    String(o.epochs ?? (h.quick ? 1 : 3)),
    '--fixed-lr',
    '--lr',
    '0.1',
    '-o',
    dnn,
  ])

  const node = `${q(process.execPath)} ${q(CLI)}`
  const test = join(dir, 'test.arrow')
  const hyp = join(dir, 'hyp.trn')
  const logp = join(dir, 'logp.arrow')
  const decodeArgs = `decode --hmm ${q(hmm)} --lm uniform`
  await ktp(['infer', '--model', dnn, test, '--top-k', '0', '--dtype', 'f32', '--quiet', '-o', logp])
  const expected = readFileSync(join(D, 'test/text'), 'utf8').trim().split('\n').length
  let pipe: DecodeRun | null = null
  let file: DecodeRun | null = null
  const pipeErrors: string[] = []
  for (let r = 0; r < reps; r++) {
    const p = runDecode(
      `${node} infer --model ${q(dnn)} ${q(test)} --top-k 0 --dtype f32 --quiet | ${node} ${decodeArgs} - -o ${q(hyp)}`,
    )
    if (p.done !== expected || p.failed > 0)
      pipeErrors.push(`pipe run ${r + 1}: done ${p.done} of ${expected}, failed ${p.failed}`)
    if (!pipe || p.rtf < pipe.rtf) pipe = p
    const f = runDecode(`${node} ${decodeArgs} ${q(logp)} -o ${q(hyp)}.file`)
    if (!file || f.rtf < file.rtf) file = f
    h.log(`decode: RTF pipe ${p.rtf} (done ${p.done}/${expected}), from file ${f.rtf}, search alone ${f.search}`)
  }
  // WER of the file decode (complete by construction), for orientation
  const ref = join(dir, 'ref.trn')
  writeFileSync(
    ref,
    readFileSync(join(D, 'test/text'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => {
        const [utt, ...words] = l.trim().split(/\s+/)
        return `${words.join(' ')} (${utt})\n`
      })
      .join(''),
  )
  const sc = spawnSync(process.execPath, [CLI, 'score', '--ref', ref, '--hyp', `${hyp}.file`, '--json'], {
    encoding: 'utf8',
  })
  const wer = sc.status === 0 ? (JSON.parse(sc.stdout) as { overall: { pct: { err: number } } }).overall.pct.err : null
  const line: BenchLine = {
    name: 'decode',
    ktp: pipe!.rtf,
    reference: null,
    unit: 'RTF',
    ratio: round(1 / pipe!.rtf),
    ratio_of: 'times faster than real time (1/RTF)',
    rtf_from_file: file!.rtf,
    rtf_search_alone: file!.search,
    audio_seconds: file!.audio,
    utterances: expected,
    wer_percent: wer == null ? null : round(wer),
    model: 'dnn 440-256-55, 3 epochs on flat-start labels',
    lm: 'uniform digit loop',
  }
  if (pipeErrors.length) line.note = `infer | decode lost or garbled utterances: ${pipeErrors.join('; ')}`
  return [line]
}
