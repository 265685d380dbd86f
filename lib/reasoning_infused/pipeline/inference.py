"""Batched generation through transformers (vLLM and CTranslate2, the optional engines, are in `engines`).

Generation sorts prompts by length, pads on the left, uses the KV cache and is greedy by default. Label scoring
(`scoring`) picks a class in one forward pass: the log-probability of each label's first token after `Answer:`.
The transformers path (greedy or sampled) can also score the labels while it generates, at the point where a row
writes the answer prefix (`AnswerScoring`), so Q->RA's "labels after the reasoning" need no second pass for
those rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase
from transformers.cache_utils import Cache, DynamicLayer
from transformers.generation.logits_process import (
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopPLogitsWarper,
)


@dataclass
class AnswerScoring:
    """Score labels during generation: when a row's generated tokens first end with `trigger` (the answer
    prefix's tokens), the log-probabilities of `label_ids` (each label's first token) at the next position are the
    ones `score_labels` would compute on the prompt followed by those generated tokens."""

    trigger: list[int]
    label_ids: list[int]


@dataclass
class AnswerScores:
    prefix_ids: list[int]  # the generated tokens up to and including the trigger's first occurrence
    logprobs: list[float]  # of AnswerScoring.label_ids after them


class TopPSampler:
    """Temperature and nucleus (top-p) sampling of the next token from a batch's logits, as `model.generate`
    samples (transformers' own warpers, then one multinomial draw per row from `generator`)."""

    def __init__(self, temperature: float, top_p: float, generator: torch.Generator):
        self.warpers = LogitsProcessorList([TemperatureLogitsWarper(temperature), TopPLogitsWarper(top_p)])
        self.generator = generator

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(self.warpers(None, logits.float()), -1)
        return torch.multinomial(probs, 1, generator=self.generator).squeeze(1)


@dataclass
class Generation:
    text: str
    n_tokens: int  # generated tokens, without the end-of-turn token
    finish_reason: str  # "stop" (end of turn) or "length" (cut at max_new_tokens)
    # labels scored where the row wrote the answer prefix (AnswerScoring); None when not requested, when the row
    # never wrote it (or only at its last step) and on backends that cannot (CTranslate2, vLLM)
    answer_scores: AnswerScores | None = None


class GenerationBackend(Protocol):
    name: str

    def generate_batches(
        self,
        prompts: list[str],
        max_new_tokens: int,
        *,
        batch_size: int,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        seed: int = 0,
        desc: str = "generating",
        answer_scoring: AnswerScoring | None = None,
    ) -> Iterator[tuple[list[int], list[Generation]]]:
        """Yield (indices into prompts, generations) batch by batch, so callers can stream results to disk.
        `answer_scoring` is honoured where the backend can (transformers, greedy); elsewhere it is ignored and
        `Generation.answer_scores` stays None."""
        ...


class Progress:
    """A progress bar over examples showing examples/s and generated tokens/s (the backends' shared display)."""

    def __init__(self, total: int, desc: str):
        self.bar = tqdm(total=total, desc=desc, unit="ex", smoothing=0.1)
        self.t0, self.n_gen = time.time(), 0

    def update(self, gens: list[Generation]) -> None:
        self.n_gen += sum(g.n_tokens for g in gens)
        self.bar.update(len(gens))
        dt = time.time() - self.t0
        self.bar.set_postfix(ex_per_s=f"{self.bar.n / dt:.2f}", tok_per_s=f"{self.n_gen / dt:.0f}")

    def close(self) -> None:
        self.bar.close()


def length_sorted_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])  # longest first: memory peaks at once
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def common_prefix_length(seqs: list[list[int]]) -> int:
    """Length of the token prefix every sequence shares, leaving each at least one token of its own."""
    n = min(len(s) for s in seqs) - 1
    first = seqs[0]
    for i in range(max(n, 0)):
        if any(s[i] != first[i] for s in seqs):
            return i
    return max(n, 0)


class _BufferedKVLayer(DynamicLayer):
    """A KV-cache layer that writes each step into a preallocated buffer and returns a view of the filled part.

    transformers' DynamicLayer concatenates, copying the whole cache at every decoding step, a large share of the
    step time on a CPU."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity
        self.length = 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        b, h, _, d = key_states.shape
        self.device = key_states.device
        self.key_buffer = key_states.new_empty((b, h, self.capacity, d))
        self.value_buffer = value_states.new_empty(
            (b, value_states.shape[1], self.capacity, value_states.shape[-1])
        )
        self.is_initialized = True

    def _refresh_views(self) -> None:
        self.keys = self.key_buffer[:, :, : self.length]
        self.values = self.value_buffer[:, :, : self.length]

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        t = key_states.shape[-2]
        if self.length + t > self.capacity:
            raise RuntimeError(f"KV buffer full ({self.capacity} positions)")
        self.key_buffer[:, :, self.length : self.length + t] = key_states
        self.value_buffer[:, :, self.length : self.length + t] = value_states
        self.length += t
        self._refresh_views()
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def expand_batch(self, batch_size: int) -> None:
        """Broadcast a batch-1 cache (a shared prompt prefix) to `batch_size` rows."""
        self.key_buffer = self.key_buffer.expand(batch_size, -1, -1, -1).contiguous()
        self.value_buffer = self.value_buffer.expand(batch_size, -1, -1, -1).contiguous()
        self._refresh_views()

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.key_buffer = self.key_buffer[indices]
        self.value_buffer = self.value_buffer[indices]
        self._refresh_views()


def shared_prefix_cache(decoder: torch.nn.Module, seqs: list[list[int]], shared: int, capacity: int) -> Cache:
    """A buffered KV cache for `capacity` positions holding the first `shared` tokens (common to all `seqs`),
    computed once at batch 1 and broadcast to every row."""
    cache = Cache(layers=[_BufferedKVLayer(capacity) for _ in range(decoder.config.num_hidden_layers)])
    if shared:
        dev = next(decoder.parameters()).device
        decoder(input_ids=torch.tensor([seqs[0][:shared]], device=dev), cache=cache, use_cache=True)
        for layer in cache.layers:
            layer.expand_batch(len(seqs))
    return cache


@torch.inference_mode()
def buffered_generate(
    model: torch.nn.Module,
    prompts: list[list[int]],
    max_new_tokens: int,
    eos_token_id: int,
    pad_token_id: int,
    drop_fraction: float = 0.25,
    stats: dict[str, float] | None = None,
    answer_scoring: AnswerScoring | None = None,
    answer_scores: dict[int, AnswerScores] | None = None,
    sampler: TopPSampler | None = None,
) -> list[tuple[list[int], str]]:
    """Decoding of one batch of tokenized prompts, greedy or by `sampler`; returns (generated ids without eos,
    finish reason).

    Greedy, the same tokens as `model.generate(do_sample=False)` (tested); a row on its own with a `TopPSampler`,
    the same tokens as `model.generate(do_sample=True)` under the same seed (tested). Three CPU savings: the
    prompt prefix all rows share (the chat template and system prompt) is computed once; the KV cache is written into a preallocated
    buffer instead of being concatenated every step; finished rows leave the batch once they are at least
    `drop_fraction` of it (dropping copies the cache, so it is not done for every single row).

    `stats`, when given, accumulates prefill_seconds, prefill_tokens (computed, padding included),
    decode_seconds, decode_row_steps (rows x steps computed, finished rows still in the batch included) and
    generated_tokens: where the time goes.

    `answer_scoring` with an `answer_scores` dict: row j's `AnswerScores` is stored under j when its generated
    tokens reach the trigger before its last step (the next step's logits are the label scores; the tokens
    generated are unchanged)."""
    if max_new_tokens < 1 or not prompts:
        return [([], "length") for _ in prompts]
    t_start = time.perf_counter()
    dev = next(model.parameters()).device
    b = len(prompts)
    p = common_prefix_length(prompts) if b > 1 else 0
    width = max(len(s) for s in prompts) - p
    cache = shared_prefix_cache(model.get_decoder(), prompts, p, p + width + max_new_tokens)
    suffixes = [s[p:] for s in prompts]
    ids = torch.full((b, width), pad_token_id, dtype=torch.long)
    att = torch.zeros((b, p + width), dtype=torch.long)
    att[:, :p] = 1
    for j, s in enumerate(suffixes):  # left padding after the shared prefix
        ids[j, width - len(s) :] = torch.tensor(s)
        att[j, p + width - len(s) :] = 1
    ids, att = ids.to(dev), att.to(dev)
    positions = (att.cumsum(-1) - 1).clamp(min=0)
    out = model(
        input_ids=ids,
        attention_mask=att,
        position_ids=positions[:, p:],
        cache=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    pick = sampler or (lambda logits: logits.argmax(-1))
    nxt = pick(out.logits[:, -1])
    t_prefill = time.perf_counter()
    row_steps = 0
    pos = positions[:, -1]
    rows = torch.arange(b, device=dev)  # original index of each live row
    done = torch.zeros(b, dtype=torch.bool, device=dev)
    generated: list[list[int]] = [[] for _ in range(b)]
    reasons = ["length"] * b
    scoring = answer_scoring is not None and answer_scores is not None
    trigger = answer_scoring.trigger if scoring else []
    waiting: set[int] = set()  # rows whose next logits are their label scores
    for step in range(max_new_tokens):
        if waiting:  # `out` was computed on the trigger's last token for these rows
            live = rows.tolist()
            picked = [live.index(r) for r in sorted(waiting)]
            logp = torch.log_softmax(out.logits[picked, -1].float(), -1)[:, answer_scoring.label_ids]
            for r, lp in zip(sorted(waiting), logp.tolist(), strict=True):
                answer_scores[r] = AnswerScores(list(generated[r]), lp)
            waiting.clear()
        for r, t, d in zip(rows.tolist(), nxt.tolist(), done.tolist(), strict=True):
            if d:
                continue
            if t == eos_token_id:
                reasons[r] = "stop"
            else:
                generated[r].append(t)
                if scoring and r not in answer_scores and generated[r][-len(trigger) :] == trigger:
                    waiting.add(r)
        done = done | (nxt == eos_token_id)
        if step == max_new_tokens - 1 or bool(done.all()):
            break
        if int(done.sum()) >= max(1, drop_fraction * len(rows)):
            keep = (~done).nonzero().squeeze(1)
            cache.batch_select_indices(keep)
            rows, nxt, pos, att, done = rows[keep], nxt[keep], pos[keep], att[keep], done[keep]
        att = torch.cat([att, att.new_ones((len(rows), 1))], 1)
        pos = pos + 1
        row_steps += len(rows)
        out = model(
            input_ids=nxt[:, None], attention_mask=att, position_ids=pos[:, None], cache=cache, use_cache=True
        )
        nxt = pick(out.logits[:, -1])
    if stats is not None:
        t_end = time.perf_counter()
        add = {
            "prefill_seconds": t_prefill - t_start,
            "prefill_tokens": p + b * width,
            "decode_seconds": t_end - t_prefill,
            "decode_row_steps": row_steps,
            "generated_tokens": sum(len(g) for g in generated),
        }
        for k, v in add.items():
            stats[k] = stats.get(k, 0) + v
    return list(zip(generated, reasons, strict=True))


class TransformersBackend:
    name = "transformers"

    def __init__(self, model: torch.nn.Module, tok: PreTrainedTokenizerBase, buffered: bool = True):
        self.model = model.eval()
        self.tok = tok
        # greedy and sampled decoding through `buffered_generate` (shared-prefix prefill, buffered KV cache,
        # finished rows dropped); False uses `model.generate`
        self.buffered = buffered
        self.stats: dict[str, float] = {}  # prefill/decode split of the fast greedy path, summed over calls

    @torch.inference_mode()
    def generate_batches(
        self,
        prompts,
        max_new_tokens,
        *,
        batch_size,
        do_sample=False,
        temperature=1.0,
        top_p=1.0,
        seed=0,
        desc="generating",
        answer_scoring=None,
        **generate_kwargs,
    ):
        tok = self.tok
        enc = tok(prompts, add_special_tokens=False)["input_ids"]
        eos = tok.eos_token_id
        progress = Progress(len(prompts), desc)
        for batch in length_sorted_batches([len(e) for e in enc], batch_size):
            scored: dict[int, AnswerScores] = {}
            if not generate_kwargs and self.buffered:
                sampler = None
                if do_sample:  # one generator per batch, seeded as `_generate` seeds the global one
                    gen = torch.Generator(next(self.model.parameters()).device).manual_seed(seed + batch[0])
                    sampler = TopPSampler(temperature, top_p, gen)
                outputs = buffered_generate(
                    self.model,
                    [enc[i] for i in batch],
                    max_new_tokens,
                    eos,
                    tok.pad_token_id,
                    stats=self.stats,
                    answer_scoring=answer_scoring,
                    answer_scores=scored,
                    sampler=sampler,
                )
            else:
                outputs = self._generate(
                    [enc[i] for i in batch],
                    max_new_tokens,
                    do_sample,
                    temperature,
                    top_p,
                    seed + batch[0],
                    **generate_kwargs,
                )
            gens = [
                Generation(tok.decode(r, skip_special_tokens=True).strip(), len(r), why, scored.get(j))
                for j, (r, why) in enumerate(outputs)
            ]
            progress.update(gens)
            yield batch, gens
        progress.close()

    def _generate(
        self,
        enc: list[list[int]],
        max_new_tokens: int,
        do_sample: bool,
        temperature: float,
        top_p: float,
        seed: int,
        **generate_kwargs,
    ) -> list[tuple[list[int], str]]:
        """One left-padded batch through `model.generate`: (ids without eos, finish reason) per row."""
        tok, eos = self.tok, self.tok.eos_token_id
        dev = next(self.model.parameters()).device
        width = max(len(e) for e in enc)
        ids = torch.full((len(enc), width), tok.pad_token_id, dtype=torch.long)
        att = torch.zeros((len(enc), width), dtype=torch.long)
        for j, e in enumerate(enc):  # left padding
            ids[j, width - len(e) :] = torch.tensor(e)
            att[j, width - len(e) :] = 1
        if do_sample:
            torch.manual_seed(seed)
        out = self.model.generate(
            input_ids=ids.to(dev),
            attention_mask=att.to(dev),
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            temperature=temperature if do_sample else None,
            top_p=top_p if do_sample else None,
            top_k=None,
            use_cache=True,
            pad_token_id=tok.pad_token_id,
            eos_token_id=eos,
            **generate_kwargs,
        )
        outputs = []
        for row in out[:, width:].tolist():
            outputs.append((row[: row.index(eos)], "stop") if eos in row else (row, "length"))
        return outputs


def generate_all(
    backend: GenerationBackend,
    prompts: list[str],
    max_new_tokens: int,
    batch_size: int,
    desc: str = "generating",
    **kw,
) -> list[Generation]:
    out: list[Generation | None] = [None] * len(prompts)
    for idx, gens in backend.generate_batches(
        prompts, max_new_tokens, batch_size=batch_size, desc=desc, **kw
    ):
        for i, g in zip(idx, gens, strict=True):
            out[i] = g
    return out  # type: ignore[return-value]
