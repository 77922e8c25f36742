#!/usr/bin/env bash
# The Prefect UI screenshots of docs/pipeline.md: a tiny pipeline (the tests' profile, one seed) run
# under one Prefect server, then its UI opened in headless Chromium: the flow runs, the artifacts, the report's.
# Writes docs/prefect-ui.png, prefect-ui-artifacts.png and prefect-ui-report.png (DOMs in $OUT).
#
#   OUT=/tmp/ui docs/screenshots.sh
#
# With PROFILE set, the runs of that profile already on the server of PREFECT_API_URL instead (the
# README's: make demo reporting to your prefect server start): the report's artifact of that real run
# goes to docs/prefect-ui-report-PROFILE.png, which the README shows.
#
#   PREFECT_API_URL=http://127.0.0.1:4200/api PROFILE=demo docs/screenshots.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$(mktemp -d)}
PY=${PY:-$ROOT/.venv/bin/python}
if [ -n "${PROFILE:-}" ]; then
  ID=$("$PY" -c "from prefect.client.orchestration import get_client as g; from prefect.client.schemas.filters import ArtifactFilter as F, ArtifactFilterKey as K; c = g(sync_client=True).__enter__(); print(max(c.read_artifacts(artifact_filter=F(key=K(any_=['report-$PROFILE']))), key=lambda a: a.created).id)")
  "$PY" "$ROOT/tests/ui_probe.py" ui-probe "/artifacts/artifact/$ID" "$OUT/report"
  cp "$OUT/report.png" "$ROOT/docs/prefect-ui-report-$PROFILE.png"
  echo "screenshot in docs/prefect-ui-report-$PROFILE.png"
  exit 0
fi
W=$OUT/project
rm -rf "$W" && mkdir -p "$W"
(cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 -I{} cp --parents {} "$W")
cd "$W"
export PYTHONPATH=$W PATH="$(dirname "$PY"):$PATH"
"$PY" - <<'PY'
import sys, yaml
sys.path.insert(0, "tests")
from pathlib import Path
from conftest import TINY_PARAMS, write_tiny_photos
from lic.data import default_images
Path("profiles/tiny.yaml").write_text(yaml.safe_dump({**TINY_PARAMS, "seeds": [0]}, sort_keys=False))
write_tiny_photos(Path("."), default_images("test"))
PY
git init -q && git add -A && git -c user.name=t -c user.email=t@t commit -qm tiny
"$PY" -m flows.stages tiny
cat > "$OUT/probe.sh" <<EOF
set -e
dvc repro > "$OUT/repro.log" 2>&1
"$PY" "$W/tests/ui_probe.py" ui-probe /runs "$OUT/runs"
"$PY" "$W/tests/ui_probe.py" ui-probe /artifacts "$OUT/artifacts"
ID=\$("$PY" -c "from prefect.client.orchestration import get_client as g; from prefect.client.schemas.filters import ArtifactFilter as F, ArtifactFilterKey as K; c = g(sync_client=True).__enter__(); print(max(c.read_artifacts(artifact_filter=F(key=K(any_=['report-tiny']))), key=lambda a: a.created).id)")
"$PY" "$W/tests/ui_probe.py" ui-probe /artifacts/artifact/\$ID "$OUT/report"
EOF
"$PY" -m flows.server bash "$OUT/probe.sh"
cp "$OUT/runs.png" "$ROOT/docs/prefect-ui.png"
cp "$OUT/artifacts.png" "$ROOT/docs/prefect-ui-artifacts.png"
cp "$OUT/report.png" "$ROOT/docs/prefect-ui-report.png"
echo "screenshots in $OUT and docs/"
