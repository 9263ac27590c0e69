"""Shared parts of the PyTorch baselines (baseline_hf.py, baseline_torch.py):
the options, the named GPT-2 shapes and the JSON-lines record that
`blurb bench --json` also writes (bench/README.md lists every field).

Only the standard library is imported here, so `python3 -m py_compile` and
`--help` work on a machine without torch."""

import argparse
import datetime
import os
import statistics
import subprocess

# Radford et al. 2019, table 2 (HF hub configs): n_layer, n_head, n_embd.
SHAPES = {
    "gpt2": (12, 12, 768),
    "gpt2-medium": (24, 16, 1024),
    "gpt2-large": (36, 20, 1280),
    "gpt2-xl": (48, 25, 1600),
}
VOCAB_SIZE = 50257
EOS = 50256


def parse_args(description, default_runs):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", default="gpt2", choices=sorted(SHAPES))
    p.add_argument("--batch", default="1,64,1024", help="comma-separated batch sizes")
    p.add_argument("--prompt-len", type=int, default=32)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp16"])
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=0, help="0 = off")
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--warmup", type=int, default=1, help="untimed runs per case")
    p.add_argument("--runs", type=int, default=default_runs, help="timed runs per case (medians)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", type=int, default=0)
    a = p.parse_args()
    try:
        a.batches = [int(x) for x in a.batch.split(",")]
    except ValueError:
        p.error("--batch needs a comma-separated list of integers, got %r" % a.batch)
    if not a.batches or min(a.batches) < 1:
        p.error("--batch sizes must be >= 1")
    if a.prompt_len < 1 or a.new_tokens < 1 or a.runs < 1 or a.warmup < 0:
        p.error("--prompt-len, --new-tokens and --runs must be >= 1, --warmup >= 0")
    if a.temperature < 0 or a.top_k < 0:
        p.error("--temperature and --top-k must be >= 0")
    return a


def blurb_commit():
    """The blurb tree these baselines ran from: $BLURB_COMMIT, else git."""
    env = os.environ.get("BLURB_COMMIT")
    if env:
        return env
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        out = subprocess.run(["git", "-C", here, "describe", "--always", "--dirty", "--abbrev=12"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def record(system, args, batch, device_name, n_params, prefill_s, total_s, steps_s,
           peak_mem_bytes, extra):
    """One JSON object in the schema of `blurb bench --json`. The analytic
    bytes/FLOPs and roofline are left null here: bench/summarize.py takes them
    from blurb's line for the same case, so all systems are measured against
    one count."""
    n_layer, n_head, n_embd = SHAPES[args.model]
    prefill = statistics.median(prefill_s)
    total = statistics.median(total_s)
    gen = batch * args.new_tokens
    r = {
        "system": system,
        "backend": "torch",
        "device": device_name,
        "cuda_driver": None,
        "model": args.model,
        "n_layer": n_layer,
        "n_head": n_head,
        "n_embd": n_embd,
        "n_ctx": args.prompt_len + args.new_tokens,
        "n_params": n_params,
        "dtype": args.dtype,
        "batch_invariant": False,
        "batch": batch,
        "prompt_len": args.prompt_len,
        "new_tokens": args.new_tokens,
        "temperature": args.temperature,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "repetition_penalty": 1.0,
        "warmup": args.warmup,
        "runs": args.runs,
        "prefill_tokens": batch * args.prompt_len,
        "generated_tokens": gen,
        "gen_tok_s": gen / total,
        "prompt_tok_s": batch * args.prompt_len / prefill,
        "step_ms_median": 1e3 * statistics.median(steps_s) if steps_s else None,
        "prefill_s": prefill,
        "total_s": total,
        "bytes": None,
        "flops": None,
        "bytes_per_s": None,
        "flop_per_s": None,
        "roofline_s": None,
        "roofline_pct": None,
        "decode_roofline_s": None,
        "decode_roofline_pct": None,
        "peak_bw_bytes_s": None,
        "peak_flop_s": None,
        "peak_mem_bytes": peak_mem_bytes,
        "commit": blurb_commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    r.update(extra)
    return r
