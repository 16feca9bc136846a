"""Reference timing for bench/features.ts: torchaudio's Kaldi fbank over WAV files, one thread.

    /usr/bin/python3 bench/features_ref.py DIR [NUM_MEL_BINS [REPEATS]]

Times only the read+decode+fbank loop (not interpreter start-up or imports), after an untimed
warm-up over the first 50 files; the loop runs REPEATS times (default 3) and the fastest counts,
since a shared machine adds noise only upwards. Prints one JSON line {"seconds", "frames", "files"}.
Options match ktp's bench: Kaldi defaults, dither 0, energy_floor 0, sample rate from each file.
"""
import glob
import json
import os
import sys
import time
import wave

import numpy as np
import torch
from torchaudio.compliance import kaldi

torch.set_num_threads(1)


def run(files, bins):
    frames = 0
    for path in files:
        with wave.open(path, "rb") as w:
            rate = w.getframerate()
            pcm = w.readframes(w.getnframes())
        x = torch.from_numpy(np.frombuffer(pcm, dtype="<i2").astype(np.float32)).unsqueeze(0)
        feats = kaldi.fbank(x, num_mel_bins=bins, dither=0.0, energy_floor=0.0, sample_frequency=float(rate))
        frames += feats.shape[0]
    return frames


def main():
    d = sys.argv[1]
    bins = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    files = sorted(glob.glob(os.path.join(d, "*.wav")))
    run(files[:50], bins)
    seconds = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        frames = run(files, bins)
        seconds = min(seconds, time.perf_counter() - t0)
    print(json.dumps({"seconds": seconds, "frames": frames, "files": len(files)}))


if __name__ == "__main__":
    main()
