"""Reference for `npm run bench -- train-dnn train-lstm`: the same training steps in PyTorch (CPU, OpenBLAS).

    KTP_REF_THREADS=N OPENBLAS_NUM_THREADS=N OMP_NUM_THREADS=N /usr/bin/python3 bench/engine_ref.py

A small server, so the harness can interleave its repetitions with ktp's without paying the torch
import each time: each stdin line `MODEL STEPS` (MODEL dnn, lstm, dnn-clip5, lstm-clip5 or gemm-MxKxN) runs STEPS training steps
(after 3 untimed warm-up steps the first time a model is asked for) and prints one JSON line
{"wall", "cpu", "frames"}: wall and process CPU seconds (all threads) of those steps. The first line
printed is {"torch", "threads"}. Threads: torch.set_num_threads(KTP_REF_THREADS); the harness pins
OpenBLAS and OpenMP to the same count through the environment (torch.set_num_threads alone does
not pin OpenBLAS).

Shapes and loss match bench/engine.ts: DNN 440-4×512-1000 sigmoid, batch 256; LSTM 40→2×256→1000,
16 chunks × 20 frames, BPTT over the chunk; soft-target cross-entropy averaged over frames; plain SGD.
The `-clip5` models add what ktp's trainer step adds: the global gradient norm clipped to 5 and a
non-finite step skipped.
"""
import json
import os
import sys
import time

import torch
import torch.nn as nn

THREADS = int(os.environ.get("KTP_REF_THREADS", "1"))
torch.set_num_threads(THREADS)


def soft_ce(logits, targets):
    return -(targets * torch.log_softmax(logits, dim=-1)).sum(-1).mean()


def sgd_update(params, opt, clip):
    """The optimiser step: plain, or as ktp's trainer does it (global norm clipped to `clip`, and a
    step whose gradient is not finite skipped): what a PyTorch user writes for the same loop."""
    if clip is None:
        opt.step()
        return
    norm = torch.nn.utils.clip_grad_norm_(params, clip)
    if torch.isfinite(norm):
        opt.step()


def dnn_step_fn(clip=None):
    torch.manual_seed(0)
    layers, d = [], 440
    for _ in range(4):
        layers += [nn.Linear(d, 512), nn.Sigmoid()]
        d = 512
    layers.append(nn.Linear(d, 1000))
    model = nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(256, 440)
    p = torch.softmax(torch.randn(256, 1000), -1)

    params = list(model.parameters())

    def step():
        opt.zero_grad(set_to_none=True)
        soft_ce(model(x), p).backward()
        sgd_update(params, opt, clip)

    return step, 256


def lstm_step_fn(clip=None):
    torch.manual_seed(0)
    lstm = nn.LSTM(40, 256, num_layers=2, batch_first=True)
    out = nn.Linear(256, 1000)
    params = list(lstm.parameters()) + list(out.parameters())
    opt = torch.optim.SGD(params, lr=0.01)
    x = torch.randn(16, 20, 40)
    p = torch.softmax(torch.randn(16, 20, 1000), -1)

    def step():
        opt.zero_grad(set_to_none=True)
        h, _ = lstm(x)
        soft_ce(out(h), p).backward()
        sgd_update(params, opt, clip)

    return step, 16 * 20


def gemm_step_fn(m, k, n):
    """One float32 (m×k)·(k×n) product per step: the GEMM ceiling the training lines are read against."""
    torch.manual_seed(0)
    a, b = torch.randn(m, k), torch.randn(k, n)

    def step():
        torch.mm(a, b)

    return step, m


MAKERS = {
    "dnn": dnn_step_fn,
    "lstm": lstm_step_fn,
    "dnn-clip5": lambda: dnn_step_fn(clip=5.0),
    "lstm-clip5": lambda: lstm_step_fn(clip=5.0),
}


def make(name):
    if name.startswith("gemm-"):
        return gemm_step_fn(*(int(d) for d in name[5:].split("x")))
    return MAKERS[name]()


def main():
    print(json.dumps({"torch": torch.__version__, "threads": THREADS}), flush=True)
    made = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        name, steps = line.split()
        if name not in made:
            made[name] = make(name)
            for _ in range(3):
                made[name][0]()
        step, frames = made[name]
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(int(steps)):
            step()
        print(
            json.dumps(
                {"wall": time.perf_counter() - w0, "cpu": time.process_time() - c0, "frames": frames * int(steps)}
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
