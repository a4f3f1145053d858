#!/usr/bin/env bash
# Refresh training measured (issue #18 item 3): copl-server on CKPT onboards every unseen
# user of DATA from their answers (the annotations outside their test split, by
# `copl onboard`), then `copl-train refresh` learns from the server's store and prints
# the before/after table: the onboarded users' test-pair accuracy with their eq. 11
# embedding on CKPT against their trained row in the refreshed checkpoint, and CKPT's
# seen users' test pairs before and after (EPOCHS, LR: refresh's --epochs, --lr). ≈ 1 min
# on the demo's checkpoint, ≈ 4 min on ufp4-all at 10 000 users with EPOCHS=100.
#   DATA=runs/demo-quick/data CKPT=runs/demo-quick/ckpt OUT=runs/refresh-bench \
#     scripts/refresh-benchmark.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-runs/demo-quick/data}
CKPT=${CKPT:-runs/demo-quick/ckpt}
OUT=${OUT:-runs/refresh-bench}
PORT=${PORT:-50074}
EPOCHS=${EPOCHS:-}
LR=${LR:-}
KEEP_LAST=${KEEP_LAST:-}
[ -f "$CKPT/manifest.json" ] || { echo "no checkpoint at $CKPT (scripts/demo.sh makes runs/demo-quick)" >&2; exit 2; }
source scripts/lib/serve.sh
rm -rf "$OUT"
mkdir -p "$OUT/answers"
trap 'kill $SERVER 2>/dev/null || true' EXIT
start_server "$CKPT" "$PORT" "$OUT/store" "$OUT/server.log" >/dev/null
# Each unseen user's answers: their annotations outside the test split.
python3 - "$DATA" "$OUT/answers" <<'PY'
import json, pathlib, sys
data, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
unseen = {u["user"] for u in map(json.loads, (data / "users.jsonl").read_text().splitlines()) if u.get("unseen")}
answers = {}
for a in map(json.loads, (data / "annotations.jsonl").read_text().splitlines()):
    if a["user"] in unseen and a["split"] != "test":
        answers.setdefault(a["user"], []).append({"chosen": a["chosen"], "rejected": a["rejected"]})
for user, given in answers.items():
    (out / f"{user}.json").write_text(json.dumps(given))
PY
n=0
for f in "$OUT"/answers/*.json; do
  $BIN/copl onboard --user "$(basename "$f" .json)" --answers-file "$f" >/dev/null
  n=$((n + 1))
done
kill $SERVER
wait $SERVER 2>/dev/null || true
echo "onboarded $n unseen users of $DATA on $CKPT; refreshing:"
$BIN/copl-train refresh --data "$DATA" --users "$OUT/store" --ckpt "$CKPT" --out "$OUT/ckpt" \
  ${EPOCHS:+--epochs "$EPOCHS"} ${LR:+--lr "$LR"} ${KEEP_LAST:+--keep-last}
