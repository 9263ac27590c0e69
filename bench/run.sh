#!/usr/bin/env bash
# One benchmark run: blurb and, where torch with CUDA is importable, the two
# PyTorch baselines on the same cases and GPU; then the ratio tables and the
# plot. Results go to bench/results/<date>-<gpu>/ (bench/README.md).
#
#   bench/run.sh          the GPU run (about 3 minutes on an H200; under 6 by
#                         construction: each command has a time limit, 330 s
#                         in all, and a stopped command keeps the cases it
#                         finished)
#   bench/run.sh --cpu    a small CPU-only run of the tooling with the default
#                         model (results in bench/results/<date>-cpu/, which
#                         git ignores: they are not GPU results)
#
# Environment: BLURB (the binary, default build/blurb, built with CUDA when
# missing), RUNS (timed runs per case, default 3), WARMUP (default 1),
# SKIP_BASELINES=1.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

mode=gpu
case "${1:-}" in
  "") ;;
  --cpu) mode=cpu ;;
  *) echo "usage: bench/run.sh [--cpu]" >&2; exit 2 ;;
esac

BLURB=${BLURB:-build/blurb}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-1}
export PYTHONDONTWRITEBYTECODE=1

if [ ! -x "$BLURB" ]; then
  echo "run.sh: $BLURB missing: building (not part of the timed run)" >&2
  if ! { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j "$(nproc)" >/dev/null; }; then
    echo "run.sh: build failed" >&2
    exit 1
  fi
  BLURB=build/blurb
fi

commit=$(git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)
export BLURB_COMMIT=$commit
day=$(date -u +%Y-%m-%d)
if [ "$mode" = gpu ]; then
  if ! command -v nvidia-smi >/dev/null; then
    echo "run.sh: nvidia-smi not found: no GPU here (bench/run.sh --cpu runs the CPU check)" >&2
    exit 1
  fi
  gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n1)
  driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n1)
  tag=$(printf '%s' "$gpu" | tr -c 'A-Za-z0-9.-' '-' | sed 's/--*/-/g; s/-$//')
else
  gpu=cpu
  driver=
  tag=cpu
fi
dir=bench/results/$day-$tag
mkdir -p "$dir" || exit 1
rm -f "$dir"/*.jsonl "$dir"/*.log

torch_ok=0
if [ "$mode" = gpu ] && [ "${SKIP_BASELINES:-0}" != 1 ] &&
   python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  torch_ok=1
fi

python3 - "$dir/meta.json" "$day" "$gpu" "$driver" "$commit" "$mode" "$torch_ok" <<'EOF'
import json, os, platform, sys
path, day, gpu, driver, commit, mode, torch_ok = sys.argv[1:]
meta = {"date": day, "gpu": gpu, "driver": driver, "blurb_commit": commit, "mode": mode,
        "host_cpus": os.cpu_count(), "python": platform.python_version()}
if torch_ok == "1":
    import torch
    meta["torch"] = torch.__version__
    meta["torch_cuda"] = torch.version.cuda
    try:
        import transformers
        meta["transformers"] = transformers.__version__
    except ImportError:
        meta["transformers"] = None
with open(path, "w") as f:
    json.dump(meta, f, indent=1)
    f.write("\n")
EOF

failed=()
# step SECONDS NAME OUTPUT.jsonl COMMAND...: appends the command's JSON lines,
# keeps its stderr in NAME.log, and notes a failure or a timeout without
# stopping the run.
step() {
  local limit=$1 name=$2 out=$3
  shift 3
  local t0=$SECONDS
  echo "run.sh: $name ..." >&2
  timeout --signal=TERM --kill-after=5 "$limit" "$@" >>"$out" 2>>"$dir/$name.log"
  local rc=$?
  if [ $rc -ne 0 ]; then
    [ $rc -eq 124 ] && echo "run.sh: $name: stopped after ${limit}s (cases done so far are kept)" >&2 ||
      echo "run.sh: $name: failed (exit $rc), see $dir/$name.log" >&2
    failed+=("$name")
  fi
  echo "run.sh: $name: $((SECONDS - t0)) s" >&2
}

common=(--prompt-len 32 --new-tokens 128 --temperature 1.0 --top-k 0 --top-p 0.95)
if [ "$mode" = gpu ]; then
  b=("$BLURB" bench --backend cuda --dtype bf16 --warmup "$WARMUP" --runs "$RUNS" --json "${common[@]}")
  step 55 blurb-gpt2 "$dir/blurb.jsonl" "${b[@]}" --model gpt2 --batch 1,64,256,1024,4096
  step 55 blurb-gpt2-xl "$dir/blurb.jsonl" "${b[@]}" --model gpt2-xl --batch 64,512
  if [ $torch_ok = 1 ]; then
    t=(python3 bench/baseline_torch.py --dtype bf16 --warmup "$WARMUP" --runs "$RUNS" "${common[@]}")
    step 60 torch-graph-gpt2 "$dir/torch-graph.jsonl" "${t[@]}" --model gpt2 --batch 1,64,256,1024,4096
    step 50 torch-graph-gpt2-xl "$dir/torch-graph.jsonl" "${t[@]}" --model gpt2-xl --batch 64,512
    # HF generate is slow: one timed run, and not at 4096 or gpt2-xl 512.
    h=(python3 bench/baseline_hf.py --dtype bf16 --warmup 1 --runs 1 "${common[@]}")
    step 60 hf-gpt2 "$dir/hf-generate.jsonl" "${h[@]}" --model gpt2 --batch 1,64,256,1024
    step 50 hf-gpt2-xl "$dir/hf-generate.jsonl" "${h[@]}" --model gpt2-xl --batch 64
  else
    echo "run.sh: torch with CUDA not importable (or SKIP_BASELINES=1): blurb only" >&2
  fi
else
  step 300 blurb-cpu "$dir/blurb.jsonl" "$BLURB" bench --backend cpu --model default --batch 1,4,16 \
    --prompt-len 16 --new-tokens 16 --warmup 1 --runs "$RUNS" --json
fi

python3 bench/summarize.py "$dir"/*.jsonl >"$dir/summary.md" || failed+=(summarize)
if command -v gnuplot >/dev/null; then
  bench/plot.sh "$dir" "$dir/throughput.png" >&2 || failed+=(plot)
else
  echo "run.sh: gnuplot not found: no plot (run bench/plot.sh $dir where it is installed)" >&2
fi
cat "$dir/summary.md"
echo
echo "run.sh: results in $dir ($SECONDS s)"
if [ ${#failed[@]} -gt 0 ]; then
  echo "run.sh: incomplete: ${failed[*]}" >&2
  exit 1
fi
