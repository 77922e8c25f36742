#!/usr/bin/env bash
# RD experiment of issue 7 on the pipeline's models (run `dvc repro` with a profile first): the
# TCQ-trained baselines coded with TCQ against the USQ-trained baselines coded with USQ (same
# architecture, same training budget, the profile's four lambdas), on the held-out images.
# Sweeps lambda_tcq, and adds two diagnostics: each family coded with the other's quantizer.
# Usage: [IMAGES=folder] experiments/tcq_vs_usq.sh OUT_DIR [MODELS_DIR] [LAMBDA_TCQ...]
# IMAGES (default: the held-out set) evaluates on another folder, e.g. the training images.
set -euo pipefail
out=${1:?output folder}; models=${2:-artifacts/models}; shift $(( $# < 2 ? $# : 2 ))
sweep=("$@"); [[ ${#sweep[@]} -gt 0 ]] || sweep=(0.02 0.05 0.1 0.2)
mkdir -p "$out"
ck() { for f in "$models/$1"/*.ckpt; do echo -m "$f"; done; }
images=(); [[ -z ${IMAGES:-} ]] || images=(--images "$IMAGES")
run() { local name=$1; shift; [[ -f "$out/$name.json" ]] || lic eval --name "$name" -o "$out/$name.json" "${images[@]}" "$@" >/dev/null; }
bd() { echo "$(lic bdrate "$out/$1.json" "$out/$2.json") % (MS-SSIM $(lic bdrate --metric ms-ssim-rgb "$out/$1.json" "$out/$2.json") %)"; }
run usq $(ck usq-base)
for lt in "${sweep[@]}"; do
  run "tcq-l$lt" $(ck tcq-base) --tcq-lambda "$lt"
  echo "BD-rate TCQ-trained + TCQ (lambda_tcq $lt) vs USQ-trained + USQ: $(bd usq "tcq-l$lt")"
done
run tcq-as-usq $(ck tcq-base) --quantizer usq
echo "BD-rate TCQ-trained + USQ vs USQ-trained + USQ: $(bd usq tcq-as-usq)"
run usq-as-tcq $(ck usq-base) --quantizer tcq --tcq-lambda 0.05
echo "BD-rate USQ-trained + TCQ (lambda_tcq 0.05) vs USQ-trained + USQ: $(bd usq usq-as-tcq)"
