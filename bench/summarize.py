#!/usr/bin/env python3
"""Tables of one bench run: the JSON lines of `blurb bench --json`,
bench/baseline_torch.py and bench/baseline_hf.py (any number of files) in,
Markdown out (bench/README.md shows the format).

Cases are matched on (model, batch, prompt_len, new_tokens). The ratios are
blurb's generated tok/s over each baseline's. The roofline % of a baseline is
blurb's roofline time for the same case (the analytic work and the peaks
measured at the start of blurb's run) over the baseline's measured time, so
every system is held to the same bound; it is left out when the dtypes
differ. Standard library only."""

import argparse
import json
import sys

SYSTEMS = ["blurb", "torch-graph", "hf-generate"]


def load(paths):
    rows = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    sys.exit("summarize: %s:%d: not JSON: %s" % (path, n, e))
    return rows


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def rate(v, scale):
    """Bytes/s or FLOP/s in the given unit: whole numbers on a GPU, decimals on a CPU."""
    if v is None:
        return "-"
    v /= scale
    return format(v, ",.0f") if v >= 100 else format(v, ".3g")


def label(model):
    """A model directory by its last component (named shapes stay as they are)."""
    return model.rstrip("/").rsplit("/", 1)[-1]


def ratio(a, b):
    return None if a is None or not b else a / b


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("files", nargs="+", help="JSON-lines files")
    a = p.parse_args()
    rows = load(a.files)
    if not rows:
        sys.exit("summarize: no results in %s" % ", ".join(a.files))

    e2e = [r for r in rows if r.get("system") == "blurb-generate"]
    rows = [r for r in rows if r.get("system") != "blurb-generate"]
    cases = {}
    order = []
    for r in rows:
        key = (r["model"], r["batch"], r["prompt_len"], r["new_tokens"])
        if key not in cases:
            cases[key] = {}
            order.append(key)
        cases[key][r["system"]] = r
    model_rank = {"gpt2": 0, "gpt2-medium": 1, "gpt2-large": 2, "gpt2-xl": 3}
    order.sort(key=lambda k: (model_rank.get(k[0], 9), k[0], k[1], k[2], k[3]))

    if e2e:
        print("End to end, `blurb generate` on the sample catalog (bench/bench_generate.sh):")
        print()
        print("| backend | records | generated tokens | wall s | records/s | generated tok/s | job s "
              "| job records/s | job generated tok/s |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in e2e:
            print("| %s | %d | %d | %.2f | %.2f | %s | %s | %s | %s |" % (
                r["backend"], r["records"], r["generated_tokens"], r["wall_s"], r["records_per_s"],
                fmt(r["gen_tok_s"], ",.0f"), fmt(r.get("job_s"), ".2f"), fmt(r.get("job_records_per_s"), ".2f"),
                fmt(r.get("job_gen_tok_s"), ",.0f")))
        print()
    if not rows:
        return 0
    blurb_rows = [r for r in rows if r["system"] == "blurb"]
    head = blurb_rows[0] if blurb_rows else rows[0]
    print("Device: %s. blurb commit %s, %s. Prompt %d + %d new tokens, temperature %g, top-k %d, top-p %g."
          % (head["device"], head.get("commit") or "unknown", head.get("date", "?"), head["prompt_len"],
             head["new_tokens"], head["temperature"], head["top_k"], head["top_p"]))
    if head.get("peak_bw_bytes_s"):
        print("Measured at the start of blurb's run: %.0f GB/s (device-to-device copy), %.1f TFLOP/s "
              "(bf16 cuBLAS GEMM)." % (head["peak_bw_bytes_s"] / 1e9, head["peak_flop_s"] / 1e12))
    print()

    print("| model | batch | blurb tok/s | torch-graph tok/s | HF generate tok/s | blurb / graph | blurb / HF |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for key in order:
        c = cases[key]
        tok = {s: (c[s]["gen_tok_s"] if s in c else None) for s in SYSTEMS}
        print("| %s | %d | %s | %s | %s | %s | %s |" % (
            label(key[0]), key[1], fmt(tok["blurb"], ",.0f"), fmt(tok["torch-graph"], ",.0f"),
            fmt(tok["hf-generate"], ",.0f"), fmt(ratio(tok["blurb"], tok["torch-graph"]), ".2f"),
            fmt(ratio(tok["blurb"], tok["hf-generate"]), ".2f")))
    print()

    print("| model | batch | system | dtype | prompt tok/s | step ms | roofline % | decode roofline % "
          "| GB/s | TFLOP/s | peak mem GiB |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for key in order:
        c = cases[key]
        b = c.get("blurb")
        for s in SYSTEMS:
            if s not in c:
                continue
            r = c[s]
            roof, droof = r.get("roofline_pct"), r.get("decode_roofline_pct")
            gbs, tfs = r.get("bytes_per_s"), r.get("flop_per_s")
            if s != "blurb" and b is not None and b.get("dtype") == r.get("dtype"):
                if b.get("roofline_s"):
                    roof = 100.0 * b["roofline_s"] / r["total_s"]
                if b.get("decode_roofline_s") and r["total_s"] > r["prefill_s"]:
                    droof = 100.0 * b["decode_roofline_s"] / (r["total_s"] - r["prefill_s"])
                if b.get("bytes"):
                    gbs, tfs = b["bytes"] / r["total_s"], b["flops"] / r["total_s"]
            mem = r.get("peak_mem_bytes")
            print("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                label(key[0]), key[1], s, r.get("dtype", "?"), fmt(r.get("prompt_tok_s"), ",.0f"),
                fmt(r.get("step_ms_median"), ".3f"), fmt(roof, ".1f"), fmt(droof, ".1f"),
                rate(gbs, 1e9), rate(tfs, 1e12),
                fmt(None if mem is None else mem / 2**30, ".1f")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
