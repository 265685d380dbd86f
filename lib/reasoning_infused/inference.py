"""Batched generation (transformers or vLLM backends) and label scoring.

Generation sorts prompts by length, pads on the left, uses the KV cache and is greedy by default. Label scoring
picks a class in one forward pass: the log-probability of each label's first token after `Answer:`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from .data import LABELS


@dataclass
class Generation:
    text: str
    n_tokens: int  # generated tokens, without the end-of-turn token
    finish_reason: str  # "stop" (end of turn) or "length" (cut at max_new_tokens)


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
    ) -> Iterator[tuple[list[int], list[Generation]]]:
        """Yield (indices into prompts, generations) batch by batch, so callers can stream results to disk."""
        ...


def _length_sorted_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])  # longest first: memory peaks at once
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class TransformersBackend:
    name = "transformers"

    def __init__(self, model: torch.nn.Module, tok: PreTrainedTokenizerBase):
        self.model = model.eval()
        self.tok = tok

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
        **generate_kwargs,
    ):
        tok = self.tok
        enc = tok(prompts, add_special_tokens=False)["input_ids"]
        dev = next(self.model.parameters()).device
        eos = tok.eos_token_id
        bar = tqdm(total=len(prompts), desc=desc, unit="ex", smoothing=0.1)
        t0, n_gen = time.time(), 0
        for batch in _length_sorted_batches([len(e) for e in enc], batch_size):
            width = max(len(enc[i]) for i in batch)
            ids = torch.full((len(batch), width), tok.pad_token_id, dtype=torch.long)
            att = torch.zeros((len(batch), width), dtype=torch.long)
            for j, i in enumerate(batch):  # left padding
                ids[j, width - len(enc[i]) :] = torch.tensor(enc[i])
                att[j, width - len(enc[i]) :] = 1
            if do_sample:
                torch.manual_seed(seed + batch[0])
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
            gens = []
            for row in out[:, width:].tolist():
                if eos in row:
                    row = row[: row.index(eos)]
                    reason = "stop"
                else:
                    reason = "length"
                gens.append(Generation(tok.decode(row, skip_special_tokens=True).strip(), len(row), reason))
                n_gen += len(row)
            bar.update(len(batch))
            dt = time.time() - t0
            bar.set_postfix(ex_per_s=f"{bar.n / dt:.2f}", tok_per_s=f"{n_gen / dt:.0f}")
            yield batch, gens
        bar.close()


class VLLMBackend:
    """Same output format, through vLLM (GPU, optional dependency `pip install vllm`; imported lazily)."""

    name = "vllm"

    def __init__(self, model_path: str, tok: PreTrainedTokenizerBase, **llm_kwargs):
        try:
            from vllm import LLM
        except ImportError as e:  # pragma: no cover - needs a GPU machine
            raise RuntimeError("augment.backend=vllm needs `pip install vllm` on a GPU machine") from e
        self.llm = LLM(model=model_path, tokenizer=model_path, **llm_kwargs)
        self.tok = tok

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
    ):  # pragma: no cover - needs a GPU machine
        from vllm import SamplingParams

        params = SamplingParams(
            max_tokens=max_new_tokens,
            temperature=temperature if do_sample else 0.0,
            top_p=top_p if do_sample else 1.0,
            seed=seed,
        )
        for s in range(0, len(prompts), batch_size):
            idx = list(range(s, min(s + batch_size, len(prompts))))
            outs = self.llm.generate([prompts[i] for i in idx], params, use_tqdm=True)
            gens = [
                Generation(
                    o.outputs[0].text.strip(),
                    len(o.outputs[0].token_ids),
                    "length" if o.outputs[0].finish_reason == "length" else "stop",
                )
                for o in outs
            ]
            yield idx, gens


def make_backend(
    name: str, model: torch.nn.Module, tok: PreTrainedTokenizerBase, model_path: str = ""
) -> GenerationBackend:
    if name == "transformers":
        return TransformersBackend(model, tok)
    if name == "vllm":
        return VLLMBackend(model_path, tok)
    raise ValueError(f"unknown generation backend {name!r} (transformers, vllm)")


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


# --- label scoring --------------------------------------------------------------------------------------------


def label_token_ids(tok: PreTrainedTokenizerBase, labels: list[str] = LABELS) -> list[list[int]]:
    """Token ids of ' <label>' as it follows 'Answer:'."""
    return [tok.encode(" " + lab, add_special_tokens=False) for lab in labels]


@torch.inference_mode()
def score_labels(
    model: torch.nn.Module,
    tok: PreTrainedTokenizerBase,
    prompts: list[str],
    batch_size: int = 64,
    labels: list[str] = LABELS,
    desc: str = "scoring labels",
) -> np.ndarray:
    """Log-probabilities [n, n_labels] of each label continuing each prompt (prompts end with 'Answer:').

    When every label starts with a distinct token (true for SmolLM2 and Llama-3), one forward pass per prompt
    scores them all; otherwise each label's full token sequence is scored (slower, same result type).
    """
    lab_ids = label_token_ids(tok, labels)
    first = [ids[0] for ids in lab_ids]
    dev = next(model.parameters()).device
    if len(set(first)) == len(first):
        seqs = [(i, tok.encode(p, add_special_tokens=False), None) for i, p in enumerate(prompts)]
    else:
        seqs = [
            (i, tok.encode(p, add_special_tokens=False), k)
            for i, p in enumerate(prompts)
            for k in range(len(labels))
        ]
    scores = np.zeros((len(prompts), len(labels)), dtype=np.float64)
    order = sorted(
        range(len(seqs)),
        key=lambda j: len(seqs[j][1]) + (len(lab_ids[seqs[j][2]]) if seqs[j][2] is not None else 0),
    )
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    bar = tqdm(total=len(prompts), desc=desc, unit="ex", smoothing=0.1)
    for s in range(0, len(order), batch_size):
        chunk = [seqs[j] for j in order[s : s + batch_size]]
        full = [p + (lab_ids[k][:-1] if k is not None else []) for _, p, k in chunk]
        width = max(len(f) for f in full)
        ids = torch.full((len(chunk), width), tok.pad_token_id, dtype=torch.long)
        att = torch.zeros((len(chunk), width), dtype=torch.long)
        for j, f in enumerate(full):  # right padding: positions stay 0..n-1
            ids[j, : len(f)] = torch.tensor(f)
            att[j, : len(f)] = 1
        hidden = decoder(input_ids=ids.to(dev), attention_mask=att.to(dev)).last_hidden_state
        for j, (i, p, k) in enumerate(chunk):
            if k is None:  # the last prompt position predicts every label's (distinct) first token
                logp = torch.log_softmax(head(hidden[j, len(p) - 1]).float(), -1)
                scores[i] = logp[first].cpu().numpy()
            else:
                pos = torch.arange(len(p) - 1, len(p) - 1 + len(lab_ids[k]), device=dev)
                logp = torch.log_softmax(head(hidden[j, pos]).float(), -1)
                scores[i, k] = float(logp[torch.arange(len(pos)), torch.tensor(lab_ids[k], device=dev)].sum())
        bar.update(len({c[0] for c in chunk}) if chunk[0][2] is None else len(chunk) / len(labels))
    bar.close()
    return scores
