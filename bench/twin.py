#!/usr/bin/env python3
"""A PyTorch twin of ktp's seven systems (issue 15), for `npm run bench -- twin` (bench/twin.ts).

Written from the paper (Tang, Wang & Zhang, "Knowledge transfer pre-training", arXiv:1506.02256),
docs/ARCHITECTURE.md §5 and the recipe config, with PyTorch's own parts (nn.Linear, nn.LSTM,
autograd, torch.optim.SGD), not translated from ktp's TypeScript, so that a bug in one cannot be
mirrored in the other. It reads ktp's CMVN'd features and frame labels as Kaldi text archives
(`ktp cat --format kaldi-text`), and the resolved recipe config as JSON, and trains:

  dnn                sigmoid DNN on ±context spliced frames (edge frames repeated), CE, newbob
  dnn-rbm            the same DNN, its hidden layers from a stack of RBMs (Gaussian–Bernoulli on
                     the input, Bernoulli–Bernoulli above, CD-1, momentum 0.5 → 0.9 over the first
                     epoch of each layer, step lr·(1 − μ), L2), a fresh softmax layer, then CE
  lstm-baseline      LSTM on chunks (zero state per chunk), CE
  lstm-kt            KT pre-training on the dnn's top-k soft targets: T²·CE(p_T, softmax(z/T))
                     per frame, its own newbob (ktLr, ktMin/MaxEpochs), then CE fine-tuning
  lstm-kt-rbm        the same from the dnn-rbm teacher
  lstm-regularise    α·CE + (1 − α)·T²·KT throughout
  lstm-layerwise-kt  KT on 1 … layers−1 LSTM layers (layerEpochs each, fixed rate, a fresh output
                     layer each time), then as lstm-kt on the full depth

Shared by every system: Glorot-uniform weights, zero biases (LSTM forget-gate bias 1), plain SGD on
the per-frame mean loss, global gradient-norm clipping at 5, a fresh shuffle of every training
frame (DNN) or chunk (LSTM) each epoch, and newbob on held-out (dev) frame accuracy: halve the rate
from the epoch whose improvement is below 0.5 points on, stop when below 0.1 while halving (not
before min-epochs), undo an epoch that made held-out accuracy worse.

Prints one JSON object per system on stdout: per-epoch held-out accuracy and the test frame
accuracy (LSTMs run over whole utterances; a target delay d is undone by reading output t + d).
"""
import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(1)

CLIP = 5.0  # ktp's default --clip, which the recipes leave as it is
START_HALVING, END_HALVING = 0.5, 0.1  # newbob thresholds, held-out accuracy points
RBM = dict(lr_low=0.01, lr=0.4, l2=0.0002, batch=100, mom_start=0.5, mom_end=0.9)  # Kaldi pretrain_dbn.sh


# ---------------------------------------------------------------- data


def read_matrices(path):
    """A Kaldi text archive of matrices: `utt  [` rows `]`."""
    out, utt, rows = {}, None, []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if utt is None:
                utt = parts[0]
                parts = parts[2:]  # drop '['
            end = parts and parts[-1] == "]"
            if end:
                parts = parts[:-1]
            if parts:
                rows.append(np.array(parts, dtype=np.float32))
            if end:
                out[utt] = np.stack(rows) if rows else np.zeros((0, 0), np.float32)
                utt, rows = None, []
    return out


def read_vectors(path):
    """A Kaldi text archive of integer vectors: `utt v0 v1 …`."""
    out = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if parts:
                out[parts[0]] = np.array([p for p in parts[1:] if p not in "[]"], dtype=np.int64)
    return out


def load_split(feats_path, labels_path):
    feats, labels = read_matrices(feats_path), read_vectors(labels_path)
    utts = [(u, feats[u], labels[u]) for u in feats if u in labels and len(labels[u]) == len(feats[u])]
    return utts


def speaker_cmvn(utts):
    """Per-speaker mean and variance normalisation; the speaker is the utterance id up to its first '-'."""
    by = {}
    for u, f, _ in utts:
        by.setdefault(u.split("-")[0], []).append(f)
    stats = {}
    for spk, fs in by.items():
        x = np.concatenate(fs)
        stats[spk] = (x.mean(0), x.std(0) + 1e-8)
    return [(u, ((f - stats[u.split("-")[0]][0]) / stats[u.split("-")[0]][1]).astype(np.float32), l) for u, f, l in utts]


def splice(x, k):
    """[T, D] → [T, D·(2k+1)]: frames t−k … t+k side by side, the edge frames repeated."""
    T = len(x)
    idx = np.clip(np.arange(T)[:, None] + np.arange(-k, k + 1)[None, :], 0, T - 1)
    return x[idx].reshape(T, -1)


def frames_of(utts, k):
    x = np.concatenate([splice(f, k) for _, f, _ in utts])
    y = np.concatenate([l for _, _, l in utts])
    return torch.from_numpy(x), torch.from_numpy(y)


def chunks_of(utts, L, d, soft=None):
    """Chunks of L positions from every utterance, the input extended by d copies of its last frame.

    Position p of the chunk starting at s sees frame s + p and is trained on the label of frame
    s + p − d (label −1: no target, masked). `soft`: per-utterance [T, C] targets, cut the same way.
    """
    D = utts[0][1].shape[1]
    starts = [(i, s) for i, (_, f, _) in enumerate(utts) for s in range(0, len(f) + d, L)]
    n = len(starts)
    x = np.zeros((n, L, D), np.float32)
    y = np.full((n, L), -1, np.int64)
    C = soft[0].shape[1] if soft is not None else 0
    q = np.zeros((n, L, C), np.float32) if soft is not None else None
    for j, (i, s) in enumerate(starts):
        _, f, lab = utts[i]
        T = len(f)
        ext = np.concatenate([f, np.repeat(f[-1:], d, 0)]) if d > 0 else f
        span = min(L, T + d - s)
        x[j, :span] = ext[s : s + span]
        for p in range(span):
            t = s + p - d
            if 0 <= t < T:
                y[j, p] = lab[t]
                if q is not None:
                    q[j, p] = soft[i][t]
    return torch.from_numpy(x), torch.from_numpy(y), (torch.from_numpy(q) if q is not None else None)


# ---------------------------------------------------------------- models


def glorot_(linear_weight):
    nn.init.xavier_uniform_(linear_weight)


class Dnn(nn.Module):
    def __init__(self, sizes):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        for lin in self.layers:
            glorot_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x):
        for lin in self.layers[:-1]:
            x = torch.sigmoid(lin(x))
        return self.layers[-1](x)


class Lstm(nn.Module):
    """Stacked one-layer nn.LSTMs (so layer-wise KT can carry layers over) and a linear output."""

    def __init__(self, in_dim, cells, layers, classes):
        super().__init__()
        self.rnns = nn.ModuleList(nn.LSTM(in_dim if i == 0 else cells, cells, batch_first=True) for i in range(layers))
        for r in self.rnns:
            glorot_(r.weight_ih_l0)  # [4H, D]: fan-in D, fan-out 4H, as a [D, 4H] Glorot matrix
            glorot_(r.weight_hh_l0)
            nn.init.zeros_(r.bias_ih_l0)
            nn.init.zeros_(r.bias_hh_l0)
            with torch.no_grad():
                r.bias_ih_l0[cells : 2 * cells] = 1.0  # PyTorch gates i, f, g, o: forget-gate bias 1
        self.out = nn.Linear(cells, classes)
        glorot_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x):
        for r in self.rnns:
            x, _ = r(x)  # zero initial state: every chunk starts afresh
        return self.out(x)


# ---------------------------------------------------------------- losses


def kt_loss(z, q, T):
    """T²·CE(q, softmax(z/T)) per frame: q is the teacher's distribution at T (rows of zeros = no target)."""
    return -(T * T) * (q * F.log_softmax(z / T, dim=-1)).sum(-1)


def batch_loss(z, y, q, hard, soft, T):
    """Mean over the frames with a target of hard·CE + soft·T²·KT."""
    z2, y2 = z.reshape(-1, z.shape[-1]), y.reshape(-1)
    m = y2 >= 0
    n = m.sum().clamp(min=1)
    total = z2.new_zeros(())
    if hard > 0:
        total = total + hard * F.cross_entropy(z2[m], y2[m], reduction="sum") / n
    if soft > 0:
        total = total + soft * kt_loss(z2[m], q.reshape(-1, q.shape[-1])[m], T).sum() / n
    return total


# ---------------------------------------------------------------- training


def train_phase(model, name, batches, evaluate, lr, min_epochs, max_epochs, loss_of, log, fixed=False):
    """Plain SGD, per-frame mean loss, clipping, newbob on held-out accuracy (see the module doc)."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    best, best_state, halving, records = -float("inf"), copy.deepcopy(model.state_dict()), False, []
    for epoch in range(1, max_epochs + 1):
        t0 = time.time()
        model.train()
        tot = frames = 0
        for b in batches():
            opt.zero_grad()
            loss = loss_of(model, b)
            loss.backward()
            n = (b[1] >= 0).sum().item()
            tot, frames = tot + loss.item() * n, frames + n
            nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            opt.step()
        acc = evaluate(model)
        impr = acc - best
        accepted = fixed or acc >= best
        if accepted:
            best, best_state = acc, copy.deepcopy(model.state_dict())
        else:
            model.load_state_dict(best_state)
        rec = dict(phase=name, epoch=epoch, lr=lr, train_loss=tot / max(1, frames), heldout_accuracy=acc, accepted=accepted)
        records.append(rec)
        log(f"twin: {name} epoch {epoch} lr {lr:.4g} train loss {rec['train_loss']:.3f} held-out {acc:.2f}%{'' if accepted else ' (rejected)'} "
            f"{time.time() - t0:.1f}s")
        if fixed:
            continue
        if halving and impr < END_HALVING and epoch >= min_epochs:
            break
        if not halving and impr < START_HALVING:
            halving = True
        if halving:
            lr *= 0.5
            for g in opt.param_groups:
                g["lr"] = lr
    model.load_state_dict(best_state)
    return records


def shuffled(n, batch, gen):
    perm = torch.randperm(n, generator=gen)
    return [perm[i : i + batch] for i in range(0, n, batch)]


@torch.no_grad()
def frame_accuracy(model, x, y, batch=8192):
    model.eval()
    hit = sum((model(x[i : i + batch]).argmax(-1) == y[i : i + batch]).sum().item() for i in range(0, len(x), batch))
    return 100.0 * hit / len(y)


@torch.no_grad()
def chunk_accuracy(model, x, y, batch=256):
    model.eval()
    hit = n = 0
    for i in range(0, len(x), batch):
        yy = y[i : i + batch]
        m = yy >= 0
        hit += ((model(x[i : i + batch]).argmax(-1) == yy) & m).sum().item()
        n += m.sum().item()
    return 100.0 * hit / max(1, n)


@torch.no_grad()
def utterance_accuracy(model, utts, d):
    """Whole utterances, as `ktp infer` runs them; output t + d names frame t."""
    model.eval()
    hit = n = 0
    for _, f, lab in utts:
        ext = np.concatenate([f, np.repeat(f[-1:], d, 0)]) if d > 0 else f
        z = model(torch.from_numpy(ext)[None])[0, d:]
        hit += (z.argmax(-1).numpy() == lab).sum()
        n += len(lab)
    return 100.0 * hit / n


def pretrain_rbms(x, sizes, epochs, gen, log):
    """Stacked RBMs by CD-1 (Kaldi rbm-train-cd1-frmshuff); returns [(W [H, V], hb)] per hidden layer."""
    out, v_all = [], x
    for l in range(len(sizes) - 1):
        V, H = sizes[l], sizes[l + 1]
        gaussian = l == 0
        W = torch.empty(H, V)
        nn.init.xavier_uniform_(W)
        vb, hb = torch.zeros(V), torch.zeros(H)
        dW, dvb, dhb = torch.zeros_like(W), torch.zeros_like(vb), torch.zeros_like(hb)
        lr = RBM["lr_low"] if gaussian else RBM["lr"]
        n_epochs = 2 * epochs if gaussian else epochs
        N = len(v_all)
        seen = 0
        for e in range(n_epochs):
            err = 0.0
            for idx in shuffled(N, RBM["batch"], gen):
                v0 = v_all[idx]
                mom = RBM["mom_start"] + (RBM["mom_end"] - RBM["mom_start"]) * min(1.0, seen / N)
                h0 = torch.sigmoid(v0 @ W.T + hb)
                h0s = (torch.rand(h0.shape, generator=gen) < h0).float()
                v1 = h0s @ W + vb
                if not gaussian:
                    v1 = torch.sigmoid(v1)
                h1 = torch.sigmoid(v1 @ W.T + hb)
                n = len(v0)
                gW = (h0.T @ v0 - h1.T @ v1) / n
                step = lr * (1 - mom)
                dW = mom * dW + step * (gW - RBM["l2"] * W)
                dvb = mom * dvb + step * (v0 - v1).mean(0)
                dhb = mom * dhb + step * (h0 - h1).mean(0)
                W, vb, hb = W + dW, vb + dvb, hb + dhb
                err += ((v0 - v1) ** 2).sum().item()
                seen += n
            log(f"twin: RBM layer {l + 1} epoch {e + 1}: reconstruction error {err / N:.4f}")
        out.append((W, hb))
        v_all = torch.sigmoid(v_all @ W.T + hb)
    return out


def topk_targets(logp, k, T):
    """Dense targets at T from top-k log-probabilities (stored f16): the tail mass τ = 1 − Σ p_topk
    shared equally by the C − k other classes at T = 1, then p_T ∝ p^(1/T) over all C classes."""
    C = logp.shape[1]
    k = min(k, C)
    top = torch.topk(logp, k, dim=1)
    vals = top.values.numpy().astype(np.float16).astype(np.float32)
    tau = np.maximum(0.0, 1.0 - np.exp(vals).sum(1))
    full = np.full(logp.shape, -np.inf, np.float32)
    if C > k:
        with np.errstate(divide="ignore"):
            full[:] = np.log(tau / (C - k))[:, None]
    np.put_along_axis(full, top.indices.numpy(), vals, axis=1)
    q = full / T
    q = np.exp(q - q.max(1, keepdims=True))
    return q / q.sum(1, keepdims=True)


# ---------------------------------------------------------------- the systems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True, help="folder with {train,dev,test}.feats.txt and .labels.txt")
    ap.add_argument("--config", required=True, help="the resolved recipe config (JSON)")
    ap.add_argument("--classes", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--speaker-cmvn", action="store_true",
                    help="normalise mean and variance per speaker (the utterance id up to its first '-') on top of the "
                    "features given: a check of per-speaker CMVN without recomputing features (per-speaker mean-variance "
                    "normalisation undoes any earlier per-dimension affine map such as global CMVN)")
    ap.add_argument("--systems", default="dnn,dnn-rbm,lstm-baseline,lstm-kt,lstm-kt-rbm,lstm-regularise,lstm-layerwise-kt")
    a = ap.parse_args()
    cfg = json.load(open(a.config))
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    C = a.classes
    split = {s: load_split(f"{a.dir}/{s}.feats.txt", f"{a.dir}/{s}.labels.txt") for s in ("train", "dev", "test")}
    if a.speaker_cmvn:
        split = {s: speaker_cmvn(u) for s, u in split.items()}
    log(f"twin: {', '.join(f'{s} {len(u)} utts {sum(len(l) for _, _, l in u)} frames' for s, u in split.items())}")
    wanted = a.systems.split(",")
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    results = []

    def emit(system, records, test_acc, seconds):
        r = dict(system=system, seed=a.seed, test_frame_accuracy=test_acc, epochs=records, seconds=round(seconds, 1))
        print(json.dumps(r), flush=True)
        results.append(r)

    # ---- teachers (those asked for, and those a student asked for needs)
    need = set(wanted) | ({"dnn"} if any(w in wanted for w in ("lstm-kt", "lstm-regularise", "lstm-layerwise-kt")) else set())
    if "lstm-kt-rbm" in wanted:
        need.add("dnn-rbm")
    t = cfg["teacher"]
    k = t["context"]
    xtr, ytr = frames_of(split["train"], k)
    xdv, ydv = frames_of(split["dev"], k)
    xte, yte = frames_of(split["test"], k)
    sizes = [xtr.shape[1], *t["hidden"], C]
    teachers = {}
    for name in ("dnn", "dnn-rbm"):
        if name not in need:
            continue
        t0 = time.time()
        model = Dnn(sizes)
        if name == "dnn-rbm":
            for lin, (W, hb) in zip(model.layers[:-1], pretrain_rbms(xtr, sizes[:-1], t["rbmEpochs"], gen, log)):
                with torch.no_grad():
                    lin.weight.copy_(W)
                    lin.bias.copy_(hb)
        batches = lambda: [(xtr[i], ytr[i]) for i in shuffled(len(xtr), t["batchSize"], gen)]  # noqa: E731
        recs = train_phase(
            model, "finetune", batches, lambda m: frame_accuracy(m, xdv, ydv), t["lr"], t["minEpochs"], t["maxEpochs"],
            lambda m, b: F.cross_entropy(m(b[0]), b[1]), log,
        )
        teachers[name] = model
        emit(name, recs, frame_accuracy(model, xte, yte), time.time() - t0)

    # ---- soft targets of the training data, per teacher
    soft = {}
    for name, model in teachers.items():
        with torch.no_grad():
            model.eval()
            lp = F.log_softmax(model(xtr), -1)
        soft[name] = lp

    # ---- students
    students = [("lstm-baseline", "baseline", None), ("lstm-kt", "kt", "dnn"), ("lstm-kt-rbm", "kt", "dnn-rbm"),
                ("lstm-regularise", "regularise", "dnn"), ("lstm-layerwise-kt", "layerwise-kt", "dnn")]
    D = split["train"][0][1].shape[1]
    for name, mode, teacher in students:
        if name not in wanted:
            continue
        s = {**cfg["student"], **cfg.get("students", {}).get(name, {})}
        t0 = time.time()
        L, d, T = s["chunkLength"], s.get("delay", 0) or 0, s["temperature"]
        q_utt = None
        if teacher:
            q = topk_targets(soft[teacher], cfg["soft"]["topK"], T)
            q_utt, off = [], 0
            for _, f, _ in split["train"]:
                q_utt.append(q[off : off + len(f)])
                off += len(f)
        cx, cy, cq = chunks_of(split["train"], L, d, q_utt)
        dx, dy, _ = chunks_of(split["dev"], L, d)
        B = s["chunksPerBatch"]
        batches = lambda: [(cx[i], cy[i], cq[i] if cq is not None else None) for i in shuffled(len(cx), B, gen)]  # noqa: E731
        ev = lambda m: chunk_accuracy(m, dx, dy)  # noqa: E731

        def loss(hard, soft_w):
            return lambda m, b: batch_loss(m(b[0]), b[1], b[2], hard, soft_w, T)

        ce = ("finetune", s["lr"], s["minEpochs"], s["maxEpochs"], loss(1, 0))
        kt = ("kt", s["ktLr"], s["ktMinEpochs"], s["ktMaxEpochs"], loss(0, 1))
        model = Lstm(D, s["cells"], s["layers"], C)
        recs = []
        if mode == "baseline":
            phases = [ce]
        elif mode == "kt":
            phases = [kt, ce]
        elif mode == "regularise":
            phases = [("regularise", s["lr"], s["minEpochs"], s["maxEpochs"], loss(s["alpha"], 1 - s["alpha"]))]
        else:
            carried = None
            for n in range(1, s["layers"]):
                part = Lstm(D, s["cells"], n, C)
                if carried is not None:
                    for i, r in enumerate(carried):
                        part.rnns[i].load_state_dict(r.state_dict())
                recs += train_phase(part, f"kt-layers{n}", batches, ev, s["ktLr"], s["layerEpochs"], s["layerEpochs"],
                                    loss(0, 1), log, fixed=True)
                carried = part.rnns
            for i, r in enumerate(carried):
                model.rnns[i].load_state_dict(r.state_dict())
            phases = [kt, ce]
        for ph, lr, mn, mx, lf in phases:
            recs += train_phase(model, ph, batches, ev, lr, mn, mx, lf, log)
        emit(name, recs, utterance_accuracy(model, split["test"], d), time.time() - t0)


if __name__ == "__main__":
    main()
