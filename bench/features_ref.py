"""Reference for `npm run bench -- features`: torchaudio's Kaldi fbank over a Kaldi data dir, as a
whole process, the equal of `ktp features DATADIR -o OUT --jobs 1`.

    /usr/bin/python3 bench/features_ref.py DATADIR OUT SCHEMA_MESSAGE [NUM_MEL_BINS]

Starts (interpreter, torch and torchaudio imports), reads DATADIR/wav.scp (id path, in file
order), decodes each WAV, computes fbank (Kaldi defaults, dither 0, energy_floor 0, the file's
sample rate) and writes one Arrow record batch per utterance — `utt`, `feats` frames × bins
float32, the schema of ktp's features files, whose message the harness passes in
SCHEMA_MESSAGE — through bench/arrow_ipc.py (Arrow IPC stream format). Threads: as pinned by the
harness (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and KTP_REF_THREADS → torch.set_num_threads).
Prints one JSON line {"frames", "utterances"}; the harness times the process from spawn to exit.
"""
import json
import os
import sys
import wave

import numpy as np
import torch
from torchaudio.compliance import kaldi

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from arrow_ipc import StreamWriter  # noqa: E402

torch.set_num_threads(int(os.environ.get("KTP_REF_THREADS", "1")))


def main():
    data, out_path, schema_path = sys.argv[1], sys.argv[2], sys.argv[3]
    bins = int(sys.argv[4]) if len(sys.argv) > 4 else 40
    rows = [line.split(None, 1) for line in open(os.path.join(data, "wav.scp")) if line.strip()]
    frames = 0
    with open(out_path, "wb") as out:
        w = StreamWriter(out, open(schema_path, "rb").read(), [("utt", "utf8"), ("feats", ("matrix", bins))])
        for utt, path in rows:
            with wave.open(path.strip(), "rb") as f:
                rate = f.getframerate()
                pcm = f.readframes(f.getnframes())
            x = torch.from_numpy(np.frombuffer(pcm, dtype="<i2").astype(np.float32)).unsqueeze(0)
            feats = kaldi.fbank(x, num_mel_bins=bins, dither=0.0, energy_floor=0.0, sample_frequency=float(rate))
            w.write({"utt": [utt], "feats": [feats.numpy()]})
            frames += feats.shape[0]
        w.close()
        out.flush()
        os.fsync(out.fileno())  # ktp's writer fsyncs its final file; so does the reference
    print(json.dumps({"frames": frames, "utterances": len(rows)}))


if __name__ == "__main__":
    main()
