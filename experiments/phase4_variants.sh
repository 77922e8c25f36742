#!/usr/bin/env bash
# Issue 13: does phase 4 (hyper-decoder + decoder) beat phase 3 (decoder only) on held-out images
# at an equal budget, and which change makes it? On the models and datasets a `dvc repro` made
# (artifacts/), for one quantizer: each variant below retrains the four lambdas' base models for
# the same steps and batch as params.yaml's retrain section, is evaluated on the held-out images
# with real bitstreams, and is compared with phase 3 and with the base (BD-rate, 95% bootstrap
# interval over the images).
#   decoder          phase 3, as the pipeline runs it (the reference)
#   hyper            phase 4, as the pipeline runs it (online indices)
#   stale            phase 4 with the dataset's indices
#   decoder-val      phase 3, a quarter of the patches held out for early stopping
#   hyper-val        phase 4 (online), likewise
#   stale-val        phase 4 (stale), likewise
#   hyper-lr10       phase 4 (online) at a tenth of the learning rate
# Usage: [SEED=s] experiments/phase4_variants.sh OUT_DIR [QUANTIZER] [STEPS] [VARIANTS...]
# (SEED: the retraining runs' seed, which draws their batches; default 0, as the pipeline's)
set -euo pipefail
out=${1:?output folder}; q=${2:-usq}; steps=${3:-200}; shift $(( $# < 3 ? $# : 3 ))
variants=("$@"); [[ ${#variants[@]} -gt 0 ]] || variants=(decoder hyper stale decoder-val hyper-val stale-val hyper-lr10)
mkdir -p "$out"
keys=(q1 q2 q3 q4)
args() {
  case $1 in
    decoder) echo "decoder" ;;
    hyper) echo "hyper-decoder" ;;
    stale) echo "hyper-decoder --strategy stale" ;;
    stale-val) echo "hyper-decoder --strategy stale --validation 0.25 --validate-every 25" ;;
    decoder-val) echo "decoder --validation 0.25 --validate-every 25" ;;
    hyper-val) echo "hyper-decoder --validation 0.25 --validate-every 25" ;;
    hyper-lr10) echo "hyper-decoder --lr 0.00001" ;;
    *) echo "unknown variant $1" >&2; exit 2 ;;
  esac
}
for v in decoder "${variants[@]}"; do
  [[ -f "$out/$v.json" ]] && continue
  models=()
  for k in "${keys[@]}"; do
    [[ -f "$out/$v-$k.ckpt" ]] || lic retrain $(args "$v") -m "artifacts/models/$q-base/$k.ckpt" \
      --latents "artifacts/latents/$q-$k.zarr" --steps "$steps" --batch-size 8 --seed "${SEED:-0}" -o "$out/$v-$k.ckpt" >/dev/null
    models+=(-m "$out/$v-$k.ckpt")
  done
  lic eval --name "$q-$v" "${models[@]}" --quantizer "$q" -o "$out/$v.json" >/dev/null
done
[[ -f "$out/base.json" ]] || lic eval --name "$q-base" $(printf -- "-m artifacts/models/$q-base/%s.ckpt " "${keys[@]}") \
  --quantizer "$q" -o "$out/base.json" >/dev/null
for v in "${variants[@]}"; do
  echo "$v vs base:    $(lic bdrate --ci "$out/base.json" "$out/$v.json")"
  [[ $v == decoder ]] || echo "$v vs decoder: $(lic bdrate --ci "$out/decoder.json" "$out/$v.json")"
done
