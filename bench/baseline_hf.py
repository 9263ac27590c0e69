#!/usr/bin/env python3
"""HF transformers `generate()` on the cases of `blurb bench`: what most users
run. GPT2LMHeadModel from a GPT2Config of the named shape (random init, HF's
own _init_weights), n_positions = prompt + new tokens, in bf16 or fp16 on one
CUDA device, default attention implementation and cache. Sampling:
do_sample=True with the given temperature and top-p, top_k=0 (HF's default
of 50 switched off unless --top-k is given), min_new_tokens = max_new_tokens
= --new-tokens, so EOS is masked and every sequence generates exactly that
many tokens.

Timing: torch.cuda.synchronize() then time.perf_counter() around generate();
a StoppingCriteria that never stops synchronises and stamps the clock after
every new token (generate already waits for the device at every step to
check for finished sequences, so this adds no stall of its own). The first
stamp ends the prefill (prompt forward + first token); the gaps between the
others are the decode steps. Prints one JSON object per case on stdout
(bench/baseline_common.py), progress on stderr. Nothing is downloaded."""

import sys
import time

from baseline_common import EOS, SHAPES, VOCAB_SIZE, parse_args, record


def main():
    args = parse_args(__doc__.split("\n")[0], default_runs=1)
    import json

    import torch
    import transformers
    from transformers import GPT2Config, GPT2LMHeadModel
    try:
        from transformers import StoppingCriteria, StoppingCriteriaList
    except ImportError:  # releases that export them only from the generation package
        from transformers.generation import StoppingCriteria, StoppingCriteriaList

    if not torch.cuda.is_available():
        sys.exit("baseline_hf: no CUDA device visible to torch")
    dev = torch.device("cuda", args.device)
    torch.cuda.set_device(dev)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float16
    n_layer, n_head, n_embd = SHAPES[args.model]
    torch.manual_seed(args.seed)

    cfg = GPT2Config(vocab_size=VOCAB_SIZE, n_positions=args.prompt_len + args.new_tokens, n_embd=n_embd,
                     n_layer=n_layer, n_head=n_head, bos_token_id=EOS, eos_token_id=EOS)
    # Initialise on the device: HF's init on the CPU takes minutes for gpt2-xl.
    with torch.device(dev):
        model = GPT2LMHeadModel(cfg)
    model = model.to(dtype).eval()
    n_params = sum(p.numel() for p in model.parameters())  # tied lm_head counted once

    class Stamps(StoppingCriteria):
        def __init__(self):
            self.times = []

        def __call__(self, input_ids, scores, **kwargs):
            torch.cuda.synchronize()
            self.times.append(time.perf_counter())
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    for batch in args.batches:
        gen = torch.Generator(device=dev)
        gen.manual_seed(args.seed + batch)
        prompt = torch.randint(0, EOS, (batch, args.prompt_len), device=dev, generator=gen)  # EOS excluded
        mask = torch.ones_like(prompt)
        prefills, totals, steps = [], [], []
        torch.cuda.reset_peak_memory_stats(dev)
        peak_used = 0
        for r in range(args.warmup + args.runs):
            stamps = Stamps()
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            with torch.no_grad():
                out = model.generate(
                    input_ids=prompt, attention_mask=mask, do_sample=True, temperature=args.temperature,
                    top_p=args.top_p, top_k=args.top_k, max_new_tokens=args.new_tokens,
                    min_new_tokens=args.new_tokens, pad_token_id=EOS, eos_token_id=EOS,
                    stopping_criteria=StoppingCriteriaList([stamps]))
            torch.cuda.synchronize()
            t1 = time.perf_counter()
            free_b, total_b = torch.cuda.mem_get_info(dev)
            peak_used = max(peak_used, total_b - free_b)
            new = out[:, args.prompt_len:]
            if tuple(new.shape) != (batch, args.new_tokens) or int((new == EOS).sum().item()) != 0:
                sys.exit("baseline_hf: generate() returned %s new tokens (want %d each) or drew EOS" %
                         (tuple(new.shape), args.new_tokens))
            if len(stamps.times) != args.new_tokens:
                # A transformers release that calls the criteria differently:
                # keep the totals, which do not depend on the stamps.
                print("baseline_hf: warning: %d stopping-criteria calls for %d new tokens; prefill and step "
                      "times are approximate" % (len(stamps.times), args.new_tokens), file=sys.stderr)
            if r < args.warmup:
                continue
            prefills.append(stamps.times[0] - t0 if stamps.times else t1 - t0)
            totals.append(t1 - t0)
            steps.extend(b - a for a, b in zip(stamps.times, stamps.times[1:]))
        rec = record("hf-generate", args, batch, torch.cuda.get_device_name(dev), n_params, prefills, totals,
                     steps, peak_used,
                     {"torch_version": torch.__version__, "transformers_version": transformers.__version__,
                      "torch_max_allocated_bytes": torch.cuda.max_memory_allocated(dev)})
        print(json.dumps(rec), flush=True)
        print("baseline_hf: %s batch %d: %.0f generated tok/s" % (args.model, batch, rec["gen_tok_s"]),
              file=sys.stderr)
        del out
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
