#!/usr/bin/env bash
# One benchmark run: blurb and, where torch with CUDA is importable, the two
# PyTorch baselines on the same cases and GPU; then the ratio tables and the
# plot. Results go to bench/results/<date>-<gpu>/ (bench/README.md).
#
#   bench/run.sh          the GPU run (about 3 minutes on an H200; under 6 by
#                         construction: each command has a time limit, 335 s
#                         in all, and a stopped command keeps the cases it
#                         finished)
#   bench/run.sh --cpu    a small CPU-only run of the tooling with the default
#                         model (results in bench/results/<date>-cpu/, which
#                         git ignores: they are not GPU results)
#
# Environment: BLURB (the binary; see below), RUNS (timed runs per case,
# default 3), WARMUP (default 1), SKIP_BASELINES=1.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

mode=gpu
case "${1:-}" in
  "") ;;
  --cpu) mode=cpu ;;
  *) echo "usage: bench/run.sh [--cpu]" >&2; exit 2 ;;
esac

RUNS=${RUNS:-3}
WARMUP=${WARMUP:-1}
export PYTHONDONTWRITEBYTECODE=1

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

# The binary: $BLURB, else build-gpu/blurb (the tree scripts/gpu-check.sh
# builds: Release, CUDA on, sm_90) on a GPU run, build/blurb on a CPU run;
# built here when missing (the build is not part of the timed run).
if [ -z "${BLURB:-}" ]; then
  if [ "$mode" = gpu ]; then
    bdir=build-gpu
    cfg=(-DCMAKE_BUILD_TYPE=Release -DBLURB_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90)
  else
    bdir=build
    cfg=(-DCMAKE_BUILD_TYPE=Release)
  fi
  # cJSON/PCRE2 from .deps/ (scripts/fetch-deps.sh) where the system lacks them.
  if [ ! -f /usr/include/cjson/cJSON.h ] && [ -f .deps/usr/include/cjson/cJSON.h ]; then
    cfg+=(-DBLURB_DEPS_PREFIX="$PWD/.deps")
  fi
  BLURB=$bdir/blurb
  if [ ! -x "$BLURB" ]; then
    echo "run.sh: $BLURB missing: building it" >&2
    if ! { cmake -S . -B "$bdir" "${cfg[@]}" >/dev/null && cmake --build "$bdir" -j "$(nproc)" >/dev/null; }; then
      echo "run.sh: build failed" >&2
      exit 1
    fi
  fi
fi
export BLURB  # bench/bench_generate.sh runs the same binary

# The commit: git, else the stamp of a copy without .git (scripts/fetch-deps.sh).
commit=$(git describe --always --dirty --abbrev=12 2>/dev/null) ||
  commit=$(head -n1 .deps/BLURB_COMMIT 2>/dev/null || head -n1 BLURB_COMMIT 2>/dev/null || echo unknown)
export BLURB_COMMIT=$commit
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
  step 50 blurb-gpt2 "$dir/blurb.jsonl" "${b[@]}" --model gpt2 --batch 1,64,256,1024,4096
  step 50 blurb-gpt2-xl "$dir/blurb.jsonl" "${b[@]}" --model gpt2-xl --batch 64,512
  if [ $torch_ok = 1 ]; then
    t=(python3 bench/baseline_torch.py --dtype bf16 --warmup "$WARMUP" --runs "$RUNS" "${common[@]}")
    step 55 torch-graph-gpt2 "$dir/torch-graph.jsonl" "${t[@]}" --model gpt2 --batch 1,64,256,1024,4096
    step 45 torch-graph-gpt2-xl "$dir/torch-graph.jsonl" "${t[@]}" --model gpt2-xl --batch 64,512
    # HF generate is slow: one timed run, and not at 4096 or gpt2-xl 512.
    h=(python3 bench/baseline_hf.py --dtype bf16 --warmup 1 --runs 1 "${common[@]}")
    step 55 hf-gpt2 "$dir/hf-generate.jsonl" "${h[@]}" --model gpt2 --batch 1,64,256,1024
    step 45 hf-gpt2-xl "$dir/hf-generate.jsonl" "${h[@]}" --model gpt2-xl --batch 64
  else
    echo "run.sh: torch with CUDA not importable (or SKIP_BASELINES=1): blurb only" >&2
  fi
  # End to end on the real default model: the whole 1,100-product sample catalog.
  step 35 generate-cuda "$dir/generate.jsonl" bench/bench_generate.sh --backend cuda
else
  step 300 blurb-cpu "$dir/blurb.jsonl" "$BLURB" bench --backend cpu --model default --batch 1,4,16 \
    --prompt-len 16 --new-tokens 16 --warmup 1 --runs "$RUNS" --json
  step 300 generate-cpu "$dir/generate.jsonl" bench/bench_generate.sh --backend cpu --records 50
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
