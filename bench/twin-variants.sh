#!/bin/bash
# Twin-only variants of a recipe config, on every fold of a cross-validated twin run (issue 15:
# "recipe defaults … each one measured with the twin"). The PyTorch twin retrains dnn,
# lstm-baseline and lstm-kt with one config change, on the same features, labels and seed as the
# base twin run, so each fold gives one paired difference (variant − base); ktp is not rerun.
#
#   npm run bench -- twin --quick --folds 6 --data DIR --out RUN      # the base run (ktp + twin)
#   bench/twin-variants.sh RUN delay5   "c['student']['delay'] = 5"
#   bench/twin-variants.sh RUN epochs8  "c['student'].update(maxEpochs=8, minEpochs=4, ktMaxEpochs=4, ktMinEpochs=3)"
#   bench/twin-variants.sh RUN cells128 "c['student']['cells'] = 128"
#   EXTRA=--speaker-cmvn bench/twin-variants.sh RUN spkcmvn pass
#   /usr/bin/python3 bench/twin_variants.py RUN delay5 epochs8 cells128 spkcmvn   # the paired table
#
# PATCH is Python run on the config dict `c`. Results: RUN/fold-*/twin/variant-NAME.s1.jsonl.
set -euo pipefail
run=$1 name=$2 patch=$3
here=$(cd "$(dirname "$0")" && pwd)
for d in "$run"/fold-*; do
  out=$d/twin/variant-$name.s1.jsonl
  [ -s "$out" ] && continue
  /usr/bin/python3 - "$d/twin/config.json" "$d/twin/config-$name.json" <<PY
import json, sys
c = json.load(open(sys.argv[1]))
$patch
json.dump(c, open(sys.argv[2], "w"))
PY
  classes=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['numClasses'])" "$d/exp/dnn.s1/ktp.json")
  # shellcheck disable=SC2086
  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 "$here/twin.py" --dir "$d/twin" \
    --config "$d/twin/config-$name.json" --classes "$classes" --seed 1 \
    --systems dnn,lstm-baseline,lstm-kt ${EXTRA:-} > "$out.tmp" 2> "$d/twin/variant-$name.log"
  mv "$out.tmp" "$out"
  echo "$d $name done"
done
