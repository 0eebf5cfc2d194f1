#!/usr/bin/env bash
# How close the cost estimate comes to the actual cost: `aiprod calibrate` in a scratch data
# directory, then every brief of a JSON-lines file (the API's request shape: content,
# duration_sec, aspect_ratio, languages, preset) rendered at every tier with `aiprod run`,
# one table row each: estimate, actual, variance. Usage:
#   AIPROD_BIN=target/release/aiprod scripts/cost_accuracy.sh BRIEFS.jsonl [TIERS]
# TIERS defaults to "economy standard premium".
set -euo pipefail
briefs=${1:?usage: cost_accuracy.sh BRIEFS.jsonl [TIERS]}
tiers=${2:-economy standard premium}
bin=${AIPROD_BIN:-target/release/aiprod}
home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
export AIPROD_DATA_DIR="$home/data"
"$bin" calibrate > "$home/calibrate.out" 2>&1 || { cat "$home/calibrate.out" >&2; exit 1; }
printf '%-3s %-15s %-9s %6s %4s %10s %10s %8s %8s\n' "#" preset tier length langs estimate actual variance semantic
n=0
while IFS= read -r line; do
  [ -z "$line" ] && continue
  n=$((n + 1))
  mapfile -t args < <(python3 - "$line" <<'PY'
import json, sys
b = json.loads(sys.argv[1])
print(b["content"])
print(b.get("duration_sec", 15))
print(b.get("aspect_ratio", "16:9"))
print(",".join(b.get("languages", ["en"])))
print(b.get("preset", "quick_social"))
PY
)
  for tier in $tiers; do
    summary=$("$bin" run "${args[0]}" --duration "${args[1]}" --aspect "${args[2]}" --lang "${args[3]}" \
      --preset "${args[4]}" --tier "$tier" --fresh --json -q 2>/dev/null || true)
    python3 - "$n" "${args[4]}" "$tier" "${args[1]}" "${args[3]}" "$summary" <<'PY'
import json, sys
n, preset, tier, length, langs, text = sys.argv[1:]
try:
    s = json.loads(text)
    r = s["cost_reconciliation"]
    semantic = s.get("semantic")
    row = (f'{r["estimate"]:10.4f} {r["actual"]["total"]:10.4f} {r["variance_pct"]:+7.1f}%'
           + (f' {semantic:8.2f}' if isinstance(semantic, (int, float)) else '        -')
           + ("" if s["cost"]["chosen_tier"] == tier else f'  (ran at {s["cost"]["chosen_tier"]})')
           + ("" if s["state"] == "delivered" else f'  {s["state"]}: {s.get("failure")}'))
except Exception as e:
    got = locals().get("s")
    row = f'   no result ({got.get("state")}: {got.get("failure")})' if isinstance(got, dict) else f'   no result ({e})'
print(f'{n:<3} {preset:<15} {tier:<9} {length:>5}s {len(langs.split(",")):>4} {row}')
PY
  done
done < "$briefs"
