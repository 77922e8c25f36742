#!/usr/bin/env bash
# RD experiment of issue 7: a TCQ-trained model coded with TCQ against a USQ-trained model coded
# with USQ, same architecture and training budget, four lambdas, held-out default test images.
# Usage: bench/tcq_vs_usq.sh OUT_DIR [STEPS]      (writes checkpoints, results JSON/CSV, BD-rates)
set -euo pipefail
out=${1:?output folder}; steps=${2:-1000}
mkdir -p "$out"
declare -A L=([q2]=0.0035 [q3]=0.0067 [q4]=0.013 [q5]=0.025)
for q in usq tcq; do
  for k in q2 q3 q4 q5; do
    lic train --quantizer "$q" --lmbda "${L[$k]}" --steps "$steps" --channels 64 96 \
      -o "$out/$q-$k.ckpt" --resume
  done
done
ck() { for k in q2 q3 q4 q5; do echo -m "$out/$1-$k.ckpt"; done; }
lic eval $(ck usq) --name usq -o "$out/usq.json"
for lt in 0.05 0.1 0.2; do
  lic eval $(ck tcq) --name "tcq-l$lt" --tcq-lambda "$lt" -o "$out/tcq-l$lt.json"
  echo "BD-rate TCQ(lambda_tcq=$lt) vs USQ: $(lic bdrate "$out/usq.json" "$out/tcq-l$lt.json") %"
done
