/**
 * RIFF/WAVE encoding, 16-bit PCM mono: what ktp writes when it synthesises audio (connected-digit
 * utterances), so that any tool (sox, Kaldi, torchaudio) reads it back. Samples are on Kaldi's
 * scale (int16 values as floats) and are rounded and clipped to int16.
 */
export function encodeWav16(samples: Float32Array, sampleRate: number): Buffer {
  const dataBytes = samples.length * 2
  const b = Buffer.alloc(44 + dataBytes)
  b.write('RIFF', 0, 'ascii')
  b.writeUInt32LE(36 + dataBytes, 4)
  b.write('WAVE', 8, 'ascii')
  b.write('fmt ', 12, 'ascii')
  b.writeUInt32LE(16, 16) // fmt chunk size
  b.writeUInt16LE(1, 20) // PCM
  b.writeUInt16LE(1, 22) // mono
  b.writeUInt32LE(sampleRate, 24)
  b.writeUInt32LE(sampleRate * 2, 28) // byte rate
  b.writeUInt16LE(2, 32) // block align
  b.writeUInt16LE(16, 34) // bits per sample
  b.write('data', 36, 'ascii')
  b.writeUInt32LE(dataBytes, 40)
  for (let i = 0; i < samples.length; i++) {
    const v = Math.max(-32768, Math.min(32767, Math.round(samples[i])))
    b.writeInt16LE(v, 44 + 2 * i)
  }
  return b
}
