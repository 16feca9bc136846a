"""Reference for bench/infer.ts: teacher inference to a top-k soft-target file in PyTorch.

    /usr/bin/python3 bench/infer_ref.py MODEL_DIR FEATS.f32 OUT THREADS [TOP_K]

Does what `ktp infer --model MODEL_DIR FEATS --top-k K --dtype f16 -o OUT` does, with the same
weights (read from MODEL_DIR/params.bin, ktp's checkpoint format) on the same frames (FEATS.f32:
raw float32 frames of all utterances back to back; FEATS.f32.lens: int32 frames per utterance):
per utterance, splice ±context frames (edges repeated, as Kaldi's splice-feats), forward through
the sigmoid DNN, log-softmax, top-k, tail mass 1 − Σ p_k; write per utterance the values as raw
float16, the ids as int16 and the tail as float32. Prints one JSON line: frames, the seconds of the
read → write loop (after imports), and top-1 ids of the first utterance for a sanity check.
"""
import json
import os
import struct
import sys
import time

import numpy as np
import torch


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
    model_dir, feats_path, out_path, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    k = int(sys.argv[5]) if len(sys.argv) > 5 else 32
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    meta = json.load(open(os.path.join(model_dir, "ktp.json")))
    spec = meta["spec"]
    sizes = [spec["inputDim"], *spec["model"]["hidden"], spec["numClasses"]]
    p = load_params(os.path.join(model_dir, "params.bin"))
    layers = []
    for l in range(len(sizes) - 1):
        name = "out" if l == len(sizes) - 2 else f"h{l}"
        layers.append((p[f"{name}.W"].view(sizes[l], sizes[l + 1]), p[f"{name}.b"]))
    left, right = meta["splice"]["left"], meta["splice"]["right"]
    dim = meta["featureDim"]
    feats = torch.from_numpy(np.fromfile(feats_path, dtype="<f4")).view(-1, dim)
    lens = np.fromfile(feats_path + ".lens", dtype="<i4")
    offsets = np.concatenate([[0], np.cumsum(lens)])
    ctx = torch.arange(-left, right + 1)
    first_top1 = None
    frames = 0
    with torch.inference_mode(), open(out_path, "wb") as out:
        for u in range(len(lens)):
            T = int(lens[u])
            x = feats[offsets[u] : offsets[u] + T]
            idx = (torch.arange(T)[:, None] + ctx[None, :]).clamp_(0, T - 1)
            h = x[idx].reshape(T, -1)
            for i, (W, b) in enumerate(layers):
                h = torch.addmm(b, h, W)
                if i < len(layers) - 1:
                    h = torch.sigmoid(h)
            lp = torch.log_softmax(h, dim=-1)
            v, ids = lp.topk(k, dim=-1)
            tail = (1 - v.exp().sum(-1)).clamp_(min=0)
            out.write(v.half().numpy().tobytes())
            out.write(ids.short().numpy().tobytes())
            out.write(tail.numpy().tobytes())
            if first_top1 is None:
                first_top1 = ids[:, 0].tolist()
            frames += T
    seconds = time.perf_counter() - t0
    print(json.dumps({"frames": frames, "seconds": seconds, "threads": threads, "torch": torch.__version__, "first_top1": first_top1}))


if __name__ == "__main__":
    main()
