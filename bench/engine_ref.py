"""Reference timings for bench/engine.ts: the same training steps in PyTorch (CPU, OpenBLAS).

Run with the Debian system python (torch 1.13 + OpenBLAS): /usr/bin/python3 bench/engine_ref.py
Prints one JSON object: frames/s per benchmark and thread count, and the best over thread counts.
Shapes and loss match bench/engine.ts: soft-target cross-entropy averaged over frames, plain SGD.
"""
import json
import sys
import time

import torch
import torch.nn as nn


def soft_ce(logits, targets):
    # -sum_c p log softmax(z), averaged over frames (rows)
    return -(targets * torch.log_softmax(logits, dim=-1)).sum(-1).mean()


def bench(step, frames_per_step, steps, reps):
    for _ in range(3):
        step()
    best = 0.0
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        dt = time.perf_counter() - t0
        best = max(best, frames_per_step * steps / dt)
    return best


def dnn_step_fn():
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

    def step():
        opt.zero_grad(set_to_none=True)
        soft_ce(model(x), p).backward()
        opt.step()

    return step, 256


def lstm_step_fn():
    torch.manual_seed(0)
    lstm = nn.LSTM(40, 256, batch_first=True)
    out = nn.Linear(256, 1000)
    params = list(lstm.parameters()) + list(out.parameters())
    opt = torch.optim.SGD(params, lr=0.01)
    x = torch.randn(16, 20, 40)
    p = torch.softmax(torch.randn(16, 20, 1000), -1)

    def step():
        opt.zero_grad(set_to_none=True)
        h, _ = lstm(x)
        soft_ce(out(h), p).backward()  # BPTT over the 20-frame chunk
        opt.step()

    return step, 16 * 20


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    result = {"torch": torch.__version__}
    for name, make in (("train-dnn", dnn_step_fn), ("train-lstm", lstm_step_fn)):
        per = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            step, frames = make()
            per[str(threads)] = bench(step, frames, steps, reps)
        result[name] = {"threads": per, "best": max(per.values())}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
