#!/usr/bin/env bash
# End to end: records/s and generated tok/s of `blurb generate` on the sample
# catalog (tests/data/myntra_sample.jsonl, 1,100 products) with the default
# model, as a user runs it: the wall time of the whole command (model and
# tokenizer loading, prompt building, generation, writing) and the job's own
# time from its summary line on stderr.
#
#   bench/bench_generate.sh [--backend cpu|cuda|auto] [--records N] [--batch N]
#                           [--max-new-tokens N] [--threads N]
#
# Prints one JSON line on stdout (fields below) and the summary on stderr.
# Defaults: backend auto, all records, blurb generate's own defaults otherwise
# (sampling T 0.8, top-p 0.9, seed 0, up to 128 new tokens, EOS ends a
# description). BLURB names the binary (default build/blurb).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
export LC_ALL=C

BLURB=${BLURB:-build/blurb}
backend=auto
records=0
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --backend) backend=$2; shift 2 ;;
    --records) records=$2; shift 2 ;;
    --batch|--max-new-tokens|--threads) extra+=("$1" "$2"); shift 2 ;;
    *) echo "usage: bench/bench_generate.sh [--backend B] [--records N] [--batch N] [--max-new-tokens N] [--threads N]" >&2
       exit 2 ;;
  esac
done
if ! "$BLURB" generate --help >/dev/null 2>&1; then
  echo "bench_generate.sh: $BLURB has no 'generate' command (not built, or the job runner has not landed)" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "$records" -gt 0 ]; then
  head -n "$records" tests/data/myntra_sample.jsonl >"$tmp/in.jsonl"
else
  cp tests/data/myntra_sample.jsonl "$tmp/in.jsonl"
fi

t0=$(date +%s.%N)
"$BLURB" generate --backend "$backend" --input "$tmp/in.jsonl" --output "$tmp/out.jsonl" "${extra[@]}" \
  2>"$tmp/err.log"
rc=$?
t1=$(date +%s.%N)
if [ $rc -ne 0 ]; then
  echo "bench_generate.sh: blurb generate failed (exit $rc):" >&2
  tail -n 20 "$tmp/err.log" >&2
  exit 1
fi
tail -n 1 "$tmp/err.log" >&2

# Counts come from the output itself; the job's seconds from its summary line
# ("... generated tokens, 95.2 s, 126.4 generated tok/s"), null if absent.
python3 - "$tmp/out.jsonl" "$tmp/err.log" "$t0" "$t1" "$backend" "${BLURB_COMMIT:-}" <<'EOF'
import json, re, sys
out, err, t0, t1, backend, commit = sys.argv[1:]
wall = float(t1) - float(t0)
records = errors = gen = prompt = 0
with open(out, encoding="utf-8") as f:
    for line in f:
        r = json.loads(line)
        records += 1
        if "error" in r:
            errors += 1
            continue
        prompt += r.get("prompt_tokens", 0)
        gen += sum(o["tokens"] for o in r["outputs"])
job_s = None
with open(err, encoding="utf-8", errors="replace") as f:
    for line in f:
        m = re.search(r"generated tokens, ([0-9.]+) s", line)
        if m:
            job_s = float(m.group(1))
print(json.dumps({
    "system": "blurb-generate", "backend": backend, "model": "default",
    "records": records, "errors": errors, "prompt_tokens": prompt, "generated_tokens": gen,
    "wall_s": wall, "records_per_s": records / wall, "gen_tok_s": gen / wall,
    "job_s": job_s, "job_records_per_s": records / job_s if job_s else None,
    "job_gen_tok_s": gen / job_s if job_s else None, "commit": commit}))
EOF
