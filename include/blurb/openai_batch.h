/* The OpenAI Batch API file format (also read by vLLM's run-batch), for
 * `blurb generate --format openai-batch`: the input is JSON Lines of requests,
 * the output one JSON line of results per request, in input order.
 *
 * Input line (https://platform.openai.com/docs/api-reference/batch, "The
 * request input object"; legacy completions body):
 *   {"custom_id": STR, "method": "POST", "url": "/v1/completions",
 *    "body": {"model": STR, "prompt": STR, "max_tokens": INT, "temperature": NUM,
 *             "top_p": NUM, "n": INT, "stop": STR|[STR...], "seed": INT,
 *             "presence_penalty": NUM, "frequency_penalty": NUM,
 *             "logit_bias": {"TOKEN_ID": NUM, ...}, "logprobs": INT|null}}
 * custom_id, method, url and body.prompt are required; every body member is
 * optional and overrides the command line's value for this line only:
 *   max_tokens (>= 1)             --max-new-tokens (OpenAI's default of 16 is
 *                                 not used: the job's default applies)
 *   temperature (0..2), top_p (0..1), n (1..128), seed (any 64-bit integer,
 *                                 negative ones taken modulo 2^64)
 *   stop: one string or a list of at most 4 non-empty strings (replaces --stop)
 *   model: accepted and ignored (the output names the model blurb runs).
 *   presence_penalty, frequency_penalty (-2..2) and logit_bias (token ids of the
 *                                 vocabulary, biases -100..100): the sampler's own
 *                                 controls (sampler.h), OpenAI semantics.
 *   best_of (1..128, >= n)        draws best_of completions and returns the n with
 *                                 the highest mean log-probability per token, best
 *                                 first (job.h's best-of; replaces --best-of)
 *   user                          accepted and ignored; stream, echo: false or
 *                                 null only; suffix: null only (else the line
 *                                 is refused: invalid_request)
 *   logprobs (0..5, or null)      per-token log-probabilities in each choice
 *                                 (below), with that many alternatives per token;
 *                                 null leaves --logprobs's choice (alternatives 0).
 * The prompt is encoded as ordinary text ("<|endoftext|>" in it is not the EOS id).
 *
 * Output line for a served request (exact bytes; ", " between members, ": "
 * after keys, JSON strings escaped as in job.h):
 *   {"id": "batch_req_L", "custom_id": C, "response": {"status_code": 200,
 *    "request_id": "L", "body": {"object": "text_completion", "model": M,
 *    "choices": [{"index": 0, "text": T, "finish_reason": "stop"|"length",
 *    "logprobs": null}, ...], "usage": {"prompt_tokens": P,
 *    "completion_tokens": G, "total_tokens": P + G}}}, "error": null}
 * With logprobs, a choice's "logprobs" is the legacy completions object instead
 * of null (one entry per generated token, EOS included, the tokens cut by a
 * stop string too):
 *   {"tokens": [TOK, ...], "token_logprobs": [X, ...],
 *    "top_logprobs": [{TOK: X, ...}, ...] | null, "text_offset": [O, ...]}
 * TOK is the token's text when its bytes are valid UTF-8 alone, else "bytes:"
 * followed by \xNN per byte (a piece of a character), and "<|endoftext|>" for
 * EOS. X is the raw-model log-probability (log-softmax at temperature 1,
 * before penalties and filters: what mean_logprob averages), "%.4f", null if
 * not finite. top_logprobs is null for logprobs 0; otherwise each step lists
 * its k most likely tokens, most likely first (blurb_top_logprobs), plus the
 * drawn token when it is not among them (k + 1 entries), with the drawn
 * token's X equal to its token_logprobs entry. O is where the token's text
 * starts in the choice's text, in Unicode code points: the characters the
 * tokens before it completed (tokenizer.h's streaming detokenizer: a character
 * split over tokens counts once it is complete, a byte that cannot become one
 * counts as its U+FFFD; EOS adds none).
 * L is the input line number, M the model directory's last path component, T
 * the completion as generated (stop string cut, not trimmed, like the API; an
 * unfinished last character is dropped, as tokenizer.h's detokenizer does),
 * G the generated tokens of all n choices (EOS included). There is no "created"
 * time or random id, so a rerun writes the same bytes.
 *
 * A line blurb cannot serve:
 *   {"id": "batch_req_L", "custom_id": C|null, "response": null,
 *    "error": {"code": CODE, "message": MSG}}
 * CODE is "invalid_json" (the line is not a JSON object), "unsupported_url"
 * (e.g. /v1/chat/completions: GPT-2 models have no chat template),
 * or "invalid_request" (a missing or
 * unknown field, a value out of range, a list prompt, a prompt too long).
 *
 * Randomness: sample s of a line draws from blurb_stream_key(seed, custom_id, s),
 * so a request's output depends on its custom_id, not on its position. */
#ifndef BLURB_OPENAI_BATCH_H
#define BLURB_OPENAI_BATCH_H

#include "blurb/error.h"
#include "blurb/job.h"
#include "blurb/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct blurb_openai_batch blurb_openai_batch;

/* Creates the format's state for a model: tok encodes the prompts, model_dir
 * gives the "model" name (its last path component, trailing '/' ignored),
 * vocab_size bounds logit_bias token ids. tok must outlive the state.
 * Returns 0, BLURB_E_INVALID (NULL argument, vocab_size <= 0) or BLURB_E_NOMEM. */
int blurb_openai_batch_new(const blurb_tokenizer *tok, const char *model_dir, int vocab_size,
                           blurb_openai_batch **out, blurb_err *err);

/* The hooks that make blurb_job_run read and write this format (job.h); they
 * point into ob, which must outlive the job. */
blurb_job_hooks blurb_openai_batch_hooks(blurb_openai_batch *ob);

/* The "model" name written to the output. */
const char *blurb_openai_batch_model_name(const blurb_openai_batch *ob);

/* Frees the state. NULL is allowed. */
void blurb_openai_batch_free(blurb_openai_batch *ob);

#ifdef __cplusplus
}
#endif
#endif
