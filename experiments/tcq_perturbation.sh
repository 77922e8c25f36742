#!/usr/bin/env bash
# Issue 7: which phase-1 perturbation trains the better TCQ model: switching, uniform noise over
# the quantizer step (2*delta) or over the union grid (delta)?
# One base model per perturbation (lambda 0.013), fine-tuned at four lambdas, coded with TCQ
# (library defaults), evaluated on the held-out images; prints each BD-rate against `switch`.
# Usage: experiments/tcq_perturbation.sh OUT_DIR [BASE_STEPS] [FINETUNE_STEPS] [PERTURBATIONS...]
set -euo pipefail
out=${1:?output folder}; base_steps=${2:-1000}; ft_steps=${3:-150}; shift $(( $# < 3 ? $# : 3 ))
perturbations=("$@"); [[ ${#perturbations[@]} -gt 0 ]] || perturbations=(switch uniform union)
mkdir -p "$out"
declare -A L=([q2]=0.0035 [q3]=0.0067 [q4]=0.013 [q6]=0.0483)
for p in switch "${perturbations[@]}"; do
  [[ -f "$out/$p.json" ]] && continue
  lic train --quantizer tcq --tcq-perturbation "$p" --lmbda 0.013 --steps "$base_steps" -o "$out/$p-base.ckpt" --resume
  for k in q2 q3 q4 q6; do
    lic train --quantizer tcq --tcq-perturbation "$p" --lmbda "${L[$k]}" --steps "$ft_steps" --lr 0.0005 \
      --init "$out/$p-base.ckpt" -o "$out/$p-$k.ckpt" --resume
  done
  lic eval --name "tcq-$p" -m "$out/$p-q2.ckpt" -m "$out/$p-q3.ckpt" -m "$out/$p-q4.ckpt" -m "$out/$p-q6.ckpt" \
    -o "$out/$p.json"
done
for p in "${perturbations[@]}"; do
  [[ $p == switch ]] && continue
  echo "BD-rate $p vs switch: PSNR $(lic bdrate "$out/switch.json" "$out/$p.json") %," \
       "MS-SSIM $(lic bdrate --metric ms-ssim-rgb "$out/switch.json" "$out/$p.json") %"
done
