"""Reference for `npm run bench -- infer`: teacher inference to a top-k soft-target Arrow file in
PyTorch, as a whole process, the equal of `ktp infer --model M FEATS --top-k K --dtype f16 -o OUT`.

    /usr/bin/python3 bench/infer_ref.py MODEL_DIR FEATS.f32 OUT SCHEMA_MESSAGE [TOP_K [BATCH_UTTS]]

Same weights (MODEL_DIR/params.bin, ktp's checkpoint format), same frames. Input: the Debian
Python has no Arrow reader, so the frames come as raw float32 (FEATS.f32, all utterances back to
back; FEATS.f32.lens, int32 frames per utterance) — reading them costs less than ktp's Arrow
decoding, which favours the reference. Per BATCH_UTTS utterances (default 32, as ktp): splice
±context frames (edges repeated, as Kaldi's splice-feats), one forward through the sigmoid DNN,
log-softmax, top-k, tail mass 1 − Σ p_k; then one Arrow record batch per utterance (`utt`, `ids`
uint16 frames × k, `logp` float16 frames × k, `tail` float32 per frame: ktp's soft-topk schema,
whose message the harness passes in SCHEMA_MESSAGE) through bench/arrow_ipc.py, and fsync.
Threads: torch.set_num_threads(KTP_REF_THREADS), OpenBLAS/OpenMP pinned by the harness.
Prints one JSON line {"frames", "utterances", "torch", "threads"}.
"""
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from arrow_ipc import StreamWriter  # noqa: E402

THREADS = int(os.environ.get("KTP_REF_THREADS", "1"))
torch.set_num_threads(THREADS)


def load_params(path):
    b = open(path, "rb").read()
    if b[:8] != b"KTPCKPT1":
        raise SystemExit(f"{path}: not a ktp checkpoint")
    (hlen,) = struct.unpack("<I", b[8:12])
    meta = json.loads(b[12 : 12 + hlen].decode("utf8"))
    off = 12 + hlen
    arrays = {}
    for name, count in meta["arrays"]:
        arrays[name] = torch.from_numpy(np.frombuffer(b, dtype="<f4", count=count, offset=off).copy())
        off += 4 * count
    return arrays


def main():
    model_dir, feats_path, out_path, schema_path = sys.argv[1:5]
    k = int(sys.argv[5]) if len(sys.argv) > 5 else 32
    group = int(sys.argv[6]) if len(sys.argv) > 6 else 32
    meta = json.load(open(os.path.join(model_dir, "ktp.json")))
    spec = meta["spec"]
    sizes = [spec["inputDim"], *spec["model"]["hidden"], spec["numClasses"]]
    p = load_params(os.path.join(model_dir, "params.bin"))
    layers = []
    for i in range(len(sizes) - 1):
        name = "out" if i == len(sizes) - 2 else f"h{i}"
        layers.append((p[f"{name}.W"].view(sizes[i], sizes[i + 1]), p[f"{name}.b"]))
    left, right = meta["splice"]["left"], meta["splice"]["right"]
    dim = meta["featureDim"]
    feats = torch.from_numpy(np.fromfile(feats_path, dtype="<f4")).view(-1, dim)
    lens = np.fromfile(feats_path + ".lens", dtype="<i4")
    offsets = np.concatenate([[0], np.cumsum(lens)])
    ctx = torch.arange(-left, right + 1)
    cols = [("utt", "utf8"), ("ids", ("matrix", k)), ("logp", ("matrix", k)), ("tail", "vector")]
    frames = 0
    with torch.inference_mode(), open(out_path, "wb") as out:
        w = StreamWriter(out, open(schema_path, "rb").read(), cols)
        for g in range(0, len(lens), group):
            us = range(g, min(g + group, len(lens)))
            xs = []
            for u in us:
                T = int(lens[u])
                idx = (torch.arange(T)[:, None] + ctx[None, :]).clamp_(0, T - 1)
                xs.append(feats[offsets[u] : offsets[u] + T][idx].reshape(T, -1))
            h = torch.cat(xs)
            for i, (W, b) in enumerate(layers):
                h = torch.addmm(b, h, W)
                if i < len(layers) - 1:
                    h = torch.sigmoid(h)
            v, ids = torch.log_softmax(h, dim=-1).topk(k, dim=-1)
            tail = (1 - v.exp().sum(-1)).clamp_(min=0)
            v16, ids16, tailn = v.half().numpy(), ids.numpy().astype("<u2"), tail.numpy()
            s = 0
            for u in us:
                T = int(lens[u])
                w.write(
                    {"utt": [f"utt{u:06d}"], "ids": [ids16[s : s + T]], "logp": [v16[s : s + T]], "tail": [tailn[s : s + T]]}
                )
                s += T
            frames += s
        w.close()
        out.flush()
        os.fsync(out.fileno())
    print(json.dumps({"frames": frames, "utterances": int(len(lens)), "torch": torch.__version__, "threads": THREADS}))


if __name__ == "__main__":
    main()
