"""Label scoring: the log-probability of each label after a prompt that ends with the answer prefix."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from reasoning_infused.data.emotion import LABELS
from reasoning_infused.pipeline.inference import common_prefix_length, shared_prefix_cache


def label_token_ids(tok: PreTrainedTokenizerBase, labels: list[str] = LABELS) -> list[list[int]]:
    """Token ids of ' <label>' as it follows 'Answer:'."""
    return [tok.encode(" " + lab, add_special_tokens=False) for lab in labels]


def _shared_prefix_forward(
    decoder: torch.nn.Module, seqs: list[list[int]], pad_token_id: int, dev: torch.device
) -> tuple[torch.Tensor, int]:
    """Last hidden states of right-padded `seqs`, the prefix they all share computed once.

    Returns (hidden [n, width - shared, d], shared): row j's position t is at hidden[j, t - shared]."""
    shared = common_prefix_length(seqs) if len(seqs) > 1 else 0
    width = max(len(s) for s in seqs) - shared
    cache = shared_prefix_cache(decoder, seqs, shared, shared + width)
    suffixes = [s[shared:] for s in seqs]
    ids = torch.full((len(seqs), width), pad_token_id, dtype=torch.long)
    att = torch.zeros((len(seqs), shared + width), dtype=torch.long)
    att[:, :shared] = 1
    for j, s in enumerate(suffixes):  # right padding: positions stay 0..n-1
        ids[j, : len(s)] = torch.tensor(s)
        att[j, shared : shared + len(s)] = 1
    positions = torch.arange(shared, shared + width, device=dev).expand(len(seqs), -1)
    out = decoder(
        input_ids=ids.to(dev),
        attention_mask=att.to(dev),
        position_ids=positions,
        cache=cache,
        use_cache=True,
    )
    return out.last_hidden_state, shared


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
        hidden, shared = _shared_prefix_forward(decoder, full, tok.pad_token_id, dev)
        # one LM-head matmul for the whole chunk (per-row calls read the 49k x d head once per row)
        row_of, cols, targets = [], [], []
        for j, (_, p, k) in enumerate(chunk):
            # first-token path: the last prompt position predicts every label's first token
            n = 1 if k is None else len(lab_ids[k])
            row_of += [j] * n
            cols += range(len(p) - 1 - shared, len(p) - 1 - shared + n)
            targets += [] if k is None else lab_ids[k]
        logp = torch.log_softmax(
            head(hidden[torch.tensor(row_of, device=dev), torch.tensor(cols, device=dev)]).float(), -1
        )
        if chunk[0][2] is None:
            scores[[i for i, _, _ in chunk]] = logp[:, first].cpu().numpy()
        else:
            tok_logp = (
                logp[torch.arange(len(targets), device=dev), torch.tensor(targets, device=dev)].cpu().numpy()
            )
            for pos, j in enumerate(row_of):
                i, _, k = chunk[j]
                scores[i, k] += tok_logp[pos]
        bar.update(len({c[0] for c in chunk}) if chunk[0][2] is None else len(chunk) / len(labels))
    bar.close()
    return scores
