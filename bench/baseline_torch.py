#!/usr/bin/env python3
"""What a strong PyTorch user writes for batched GPT-2 sampling, as the
baseline of `blurb bench` (same cases, same JSON-lines schema):

- GPT-2 written out in plain PyTorch (pre-LN blocks, tanh GELU, tied LM head)
  with random weights (normal(0, 0.02), LayerNorm 1/0, biases 0, as HF's init),
  in bf16 or fp16;
- a static KV cache [n_layer][batch, n_head, n_ctx, head_dim] with
  n_ctx = prompt + new tokens, attention by scaled_dot_product_attention;
- prefill eager (one call over all prompts, causal SDPA);
- the whole decode step -- embedding, every layer, the LM head, sampling, and
  feeding the drawn token back -- captured in one CUDA graph and replayed
  new_tokens - 1 times with no host synchronisation in between;
- sampling on the GPU in fp32: EOS masked (every sequence generates exactly
  --new-tokens), temperature, top-k (torch.topk) or a full sort, top-p over the
  sorted probabilities, and the draw as argmax(p / E) with E ~ Exp(1) (the
  exponential race: the index of the smallest E_i / p_i is distributed as p),
  which needs no host round trip.

Timing: CUDA events around the prefill and around every graph replay; the
median decode step is the median event interval. Prints one JSON object per
case on stdout (bench/baseline_common.py), progress on stderr.
Needs torch with CUDA; nothing is downloaded."""

import math
import sys

from baseline_common import EOS, SHAPES, VOCAB_SIZE, parse_args, record


def main():
    args = parse_args(__doc__.split("\n")[0], default_runs=3)
    import json

    import torch
    import torch.nn.functional as F

    if not torch.cuda.is_available():
        sys.exit("baseline_torch: no CUDA device visible to torch")
    dev = torch.device("cuda", args.device)
    torch.cuda.set_device(dev)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float16
    n_layer, n_head, n_embd = SHAPES[args.model]
    head_dim = n_embd // n_head
    n_inner = 4 * n_embd
    n_ctx = args.prompt_len + args.new_tokens
    torch.manual_seed(args.seed)

    def normal(*shape):
        return (torch.randn(*shape, device=dev, dtype=torch.float32) * 0.02).to(dtype)

    def zeros(*shape):
        return torch.zeros(*shape, device=dev, dtype=dtype)

    def ones(*shape):
        return torch.ones(*shape, device=dev, dtype=dtype)

    # Weights in F.linear's [out, in] layout; wte doubles as the LM head.
    wte = normal(VOCAB_SIZE, n_embd)
    wpe = normal(n_ctx, n_embd)
    layers = []
    for _ in range(n_layer):
        layers.append({
            "ln_1_w": ones(n_embd), "ln_1_b": zeros(n_embd),
            "qkv_w": normal(3 * n_embd, n_embd), "qkv_b": zeros(3 * n_embd),
            "proj_w": normal(n_embd, n_embd), "proj_b": zeros(n_embd),
            "ln_2_w": ones(n_embd), "ln_2_b": zeros(n_embd),
            "fc_w": normal(n_inner, n_embd), "fc_b": zeros(n_inner),
            "mlp_w": normal(n_embd, n_inner), "mlp_b": zeros(n_embd),
        })
    ln_f_w, ln_f_b = ones(n_embd), zeros(n_embd)
    n_params = wte.numel() + wpe.numel() + 2 * n_embd + sum(t.numel() for L in layers for t in L.values())
    eps = 1e-5

    def block_mlp(L, x):
        h = F.layer_norm(x, (n_embd,), L["ln_2_w"], L["ln_2_b"], eps)
        h = F.gelu(F.linear(h, L["fc_w"], L["fc_b"]), approximate="tanh")
        return x + F.linear(h, L["mlp_w"], L["mlp_b"])

    def split_heads(t, B, T):
        return t.view(B, T, n_head, head_dim).transpose(1, 2)  # [B, H, T, D]

    def sample(logits):
        """One token per row of fp32 logits [B, V], entirely on the GPU."""
        logits = logits.float()
        logits[:, EOS] = -math.inf  # min_new_tokens == new_tokens: EOS never drawn
        if args.temperature == 0:
            return logits.argmax(dim=-1)
        logits = logits / args.temperature
        if args.top_k > 0:
            vals, idx = torch.topk(logits, min(args.top_k, VOCAB_SIZE), dim=-1)  # sorted, descending
        else:
            vals, idx = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(vals, dim=-1)
        if args.top_p < 1.0:
            # Keep the smallest prefix whose mass reaches top_p: a token stays
            # while the mass before it is below top_p (the first always stays).
            before = torch.cumsum(probs, dim=-1) - probs
            probs = probs.masked_fill(before >= args.top_p, 0.0)
        # A zero from exponential_ would turn 0 / 0 into NaN, which argmax
        # prefers: keep every E strictly positive.
        race = torch.empty_like(probs).exponential_(1.0).clamp_min_(torch.finfo(torch.float32).tiny)
        choice = torch.argmax(probs / race, dim=-1, keepdim=True)
        return idx.gather(-1, choice).squeeze(-1)

    def run_case(B):
        """Every run of one batch size; its state is freed when this returns."""
        # Static state the graph reads and writes: caches, last token, position.
        k_cache = [torch.zeros(B, n_head, n_ctx, head_dim, device=dev, dtype=dtype) for _ in range(n_layer)]
        v_cache = [torch.zeros(B, n_head, n_ctx, head_dim, device=dev, dtype=dtype) for _ in range(n_layer)]
        cur = torch.zeros(B, dtype=torch.long, device=dev)
        pos = torch.zeros(1, dtype=torch.long, device=dev)
        out = torch.zeros(B, args.new_tokens, dtype=torch.long, device=dev)
        positions = torch.arange(n_ctx, device=dev)

        def prefill(prompt):
            T = prompt.shape[1]
            x = F.embedding(prompt, wte) + wpe[:T]
            for li, L in enumerate(layers):
                h = F.layer_norm(x, (n_embd,), L["ln_1_w"], L["ln_1_b"], eps)
                q, k, v = F.linear(h, L["qkv_w"], L["qkv_b"]).split(n_embd, dim=-1)
                q, k, v = split_heads(q, B, T), split_heads(k, B, T), split_heads(v, B, T)
                k_cache[li][:, :, :T].copy_(k)
                v_cache[li][:, :, :T].copy_(v)
                a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
                a = a.transpose(1, 2).reshape(B, T, n_embd)
                x = x + F.linear(a, L["proj_w"], L["proj_b"])
                x = block_mlp(L, x)
            h = F.layer_norm(x[:, -1], (n_embd,), ln_f_w, ln_f_b, eps)
            tok = sample(F.linear(h, wte))
            out[:, 0].copy_(tok)
            cur.copy_(tok)
            pos.fill_(T)

        def decode_step():
            # cur holds the token at position pos; append it and draw the next.
            x = F.embedding(cur, wte) + F.embedding(pos, wpe)  # [B, E]
            mask = (positions <= pos).view(1, 1, 1, n_ctx)
            for li, L in enumerate(layers):
                h = F.layer_norm(x, (n_embd,), L["ln_1_w"], L["ln_1_b"], eps)
                q, k, v = F.linear(h, L["qkv_w"], L["qkv_b"]).split(n_embd, dim=-1)
                q = q.view(B, n_head, 1, head_dim)
                k_cache[li].index_copy_(2, pos, k.view(B, n_head, 1, head_dim))
                v_cache[li].index_copy_(2, pos, v.view(B, n_head, 1, head_dim))
                a = F.scaled_dot_product_attention(q, k_cache[li], v_cache[li], attn_mask=mask)
                x = x + F.linear(a.reshape(B, n_embd), L["proj_w"], L["proj_b"])
                x = block_mlp(L, x)
            h = F.layer_norm(x, (n_embd,), ln_f_w, ln_f_b, eps)
            tok = sample(F.linear(h, wte))
            out.index_copy_(1, pos - (args.prompt_len - 1), tok.view(B, 1))
            cur.copy_(tok)
            pos.add_(1)

        gen = torch.Generator(device=dev)
        gen.manual_seed(args.seed + B)
        prompt = torch.randint(0, EOS, (B, args.prompt_len), device=dev, generator=gen)  # EOS excluded

        # Capture: warm up on a side stream (cuBLAS handles, SDPA kernel
        # choice), then record one decode step. The warm-up steps write the
        # caches and `out` at positions a run rewrites before reading them
        # (at most new_tokens - 1 steps, so they stay inside both).
        n_steps = args.new_tokens - 1
        graph = None
        torch.cuda.synchronize()
        with torch.no_grad():
            prefill(prompt)
            if n_steps > 0:
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    for _ in range(min(3, n_steps)):
                        decode_step()
                torch.cuda.current_stream().wait_stream(side)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    decode_step()
        torch.cuda.synchronize()

        events = [torch.cuda.Event(enable_timing=True) for _ in range(n_steps + 2)]
        prefills, totals, steps = [], [], []
        torch.cuda.reset_peak_memory_stats(dev)
        for r in range(args.warmup + args.runs):
            torch.cuda.synchronize()
            with torch.no_grad():
                events[0].record()
                prefill(prompt)
                events[1].record()
                for s in range(n_steps):
                    graph.replay()
                    events[s + 2].record()
            torch.cuda.synchronize()
            # Every position of `out` was written this run, and none is EOS.
            if int((out == EOS).sum().item()) != 0:
                sys.exit("baseline_torch: EOS drawn although masked")
            if r < args.warmup:
                continue
            prefills.append(events[0].elapsed_time(events[1]) * 1e-3)
            totals.append(events[0].elapsed_time(events[n_steps + 1]) * 1e-3)
            steps.extend(events[s + 1].elapsed_time(events[s + 2]) * 1e-3 for s in range(n_steps))
        free_b, total_b = torch.cuda.mem_get_info(dev)
        return record("torch-graph", args, B, torch.cuda.get_device_name(dev), n_params, prefills, totals,
                      steps, total_b - free_b,
                      {"torch_version": torch.__version__,
                       "torch_max_allocated_bytes": torch.cuda.max_memory_allocated(dev)})

    for batch in args.batches:
        rec = run_case(batch)
        print(json.dumps(rec), flush=True)
        print("baseline_torch: %s batch %d: %.0f generated tok/s, step %.3f ms" %
              (args.model, batch, rec["gen_tok_s"], rec["step_ms_median"] or float("nan")), file=sys.stderr)
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
