#!/usr/bin/env bash
# Plots generated tok/s against batch size (log-log), one line per system and
# model size, from the JSON lines of a bench run.
#
#   bench/plot.sh DIR [OUT.png]     reads DIR/*.jsonl, writes OUT (default DIR/throughput.png)
#
# Needs gnuplot (Debian: apt-get install gnuplot-nox) and python3 (standard
# library only) to turn the JSON lines into gnuplot data blocks.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ] || [ ! -d "$1" ]; then
  echo "usage: bench/plot.sh RESULTS_DIR [OUT.png]" >&2
  exit 2
fi
dir=$1
out=${2:-$dir/throughput.png}
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "plot.sh: python3 not found" >&2; exit 1; }
shopt -s nullglob
files=("$dir"/*.jsonl)
[ ${#files[@]} -gt 0 ] || { echo "plot.sh: no .jsonl files in $dir" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One data block per (system, model): "batch gen_tok_s" sorted by batch, and
# the plot command naming them; the title line says where the figures came from.
python3 - "$tmp" "${files[@]}" <<'EOF'
import json, os, sys
tmp, paths = sys.argv[1], sys.argv[2:]
series, devices = {}, set()
for path in paths:
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            if "batch" not in r:  # end-to-end rows (bench_generate.sh) have no batch size
                continue
            key = (r["system"], r["model"].rstrip("/").rsplit("/", 1)[-1], r["dtype"])
            series.setdefault(key, {})[r["batch"]] = r["gen_tok_s"]
            devices.add(r["device"])
if not series:
    sys.exit("plot.sh: no results in the JSON files")
# The system sets the dash pattern, the model size the colour and point.
dashes = {"blurb": 1, "torch-graph": 2, "hf-generate": 3}
colours = ["#1f5fbf", "#2a9d3a", "#e07b00", "#c0262d", "#7b3fb0", "#555555"]
models = sorted({k[1] for k in series}, key=lambda m: (["gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"] + [m]).index(m))
system_rank = lambda s: list(dashes).index(s) if s in dashes else len(dashes)
plots = []
for i, key in enumerate(sorted(series, key=lambda k: (system_rank(k[0]), models.index(k[1]), k[2]))):
    dat = os.path.join(tmp, "s%d.dat" % i)
    with open(dat, "w") as f:
        for b in sorted(series[key]):
            f.write("%d %.6g\n" % (b, series[key][b]))
    m = models.index(key[1])
    plots.append("'%s' using 1:2 with linespoints lw 2 dt %d lc rgb '%s' pt %d title '%s'" % (
        dat, dashes.get(key[0], 4), colours[m % len(colours)], [7, 5, 9, 13, 11, 3][m % 6],
        " ".join(key).replace("'", "")))
with open(os.path.join(tmp, "plot.gp"), "w") as f:
    f.write("set title 'generated tokens/s vs batch size (%s)' noenhanced\n" % ", ".join(sorted(devices)))
    f.write("plot " + ", \\\n     ".join(plots) + "\n")
EOF

gnuplot <<EOF
set terminal pngcairo size 1000,650 font ',11'
set output '$out'
set logscale x 2
set logscale y 10
set format y '%.0s%c'
set xlabel 'batch size (sequences)'
set ylabel 'generated tokens / s'
set grid xtics ytics mytics
set key left top noenhanced
set pointsize 1.2
set offsets graph 0.03, graph 0.03, 0, 0
load '$tmp/plot.gp'
EOF
echo "plot.sh: wrote $out"
