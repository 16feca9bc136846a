#!/usr/bin/env python3
"""Paired table of twin-only variants (bench/twin-variants.sh): per system, variant − base test
frame accuracy over the folds, its mean and a 95 % Student-t interval. JSON on stdout."""
import glob
import json
import os
import statistics as st
import sys

T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228, 11: 2.201}


def load(path):
    return {json.loads(line)["system"]: json.loads(line)["test_frame_accuracy"] for line in open(path)}


def main():
    run, names = sys.argv[1], sys.argv[2:]
    out = {}
    for name in names:
        for system in ("dnn", "lstm-baseline", "lstm-kt"):
            pairs = []
            for d in sorted(glob.glob(f"{run}/fold-*")):
                base, var = f"{d}/twin/twin.s1.jsonl", f"{d}/twin/variant-{name}.s1.jsonl"
                if os.path.exists(base) and os.path.exists(var):
                    pairs.append((os.path.basename(d), load(base)[system], load(var)[system]))
            n = len(pairs)
            if n == 0:
                continue
            diffs = [v - b for _, b, v in pairs]
            mean = st.mean(diffs)
            half = T975[n - 1] * st.stdev(diffs) / n**0.5 if n > 1 else None
            ci = None if half is None else [round(mean - half, 2), round(mean + half, 2)]
            print(f"{name:9s} {system:14s} n={n} variant − base {mean:+.2f} 95% CI {ci}", file=sys.stderr)
            out.setdefault(name, {})[system] = {
                "n": n, "mean_diff": round(mean, 3), "ci95": ci,
                "pairs": [{"fold": f, "base": round(b, 2), "variant": round(v, 2)} for f, b, v in pairs],
            }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
