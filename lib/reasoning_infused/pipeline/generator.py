"""Stage 1: fine-tune the reasoning generator ("Llama-R-Gen"): R given Q and A."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from datasets import Dataset

from reasoning_infused.data.prompts import generator_prompt, prompt_version
from reasoning_infused.data.reasoning_triples import load_reasoning_triples
from reasoning_infused.experiment import artifacts
from reasoning_infused.experiment.settings import Profile
from reasoning_infused.pipeline.modeling import (
    load_model_and_tokenizer,
    load_tokenizer,
    load_trained,
    release_memory,
)
from reasoning_infused.pipeline.training import SFTExample, completion_loss, distributed_state, train_sft


def generator_examples(tok, rows: Dataset) -> list[SFTExample]:
    return [SFTExample(generator_prompt(tok, r["question"], r["answer"]), r["reasoning"]) for r in rows]


def generator_split(profile: Profile, tok=None) -> tuple[Dataset, Dataset]:
    """(train, held-out) triples: per source a shuffle seeded by data.seed, filtered to max_length tokens, no
    overlap."""
    tok = tok or load_tokenizer(profile.model)
    g, d = profile.generator, profile.data
    sources = [s for s, n in g.sources.items() if n > 0]
    if d.reasoning_hub_id:
        sources = ["hub"]
    triples = load_reasoning_triples(sources, d.reasoning_dir, d.reasoning_hub_id, d.reasoning_columns)
    rng = np.random.default_rng(d.seed)
    per_source_heldout = max(1, g.heldout_size // max(1, len(sources)))
    src_col = np.asarray(triples["source"])
    train_idx, held_idx = [], []
    for src in sources:
        want = sum(g.sources.values()) if src == "hub" else g.sources[src]
        members = rng.permutation(np.flatnonzero(src_col == src))
        picked: list[int] = []
        need = want + per_source_heldout
        for start in range(0, len(members), 4 * need):  # tokenise candidates in chunks until enough fit
            cand = members[start : start + 4 * need].tolist()
            exs = generator_examples(tok, triples.select(cand))
            p = tok([e.prompt for e in exs], add_special_tokens=False)["input_ids"]
            c = tok([e.completion for e in exs], add_special_tokens=False)["input_ids"]
            picked += [
                i for i, a, b in zip(cand, p, c, strict=True) if len(a) + len(b) + 1 <= g.train.max_length
            ]
            if len(picked) >= need:
                break
        held_idx += picked[:per_source_heldout]
        train_idx += picked[per_source_heldout : per_source_heldout + want]
    return triples.select(train_idx), triples.select(held_idx)


def train_generator(profile: Profile, force: bool = False) -> dict[str, Any]:
    """Train (or reuse) the generator for these settings; also measure the held-out completion loss of the base
    and the trained model. Returns the artifact's metadata."""
    art = artifacts.generator_artifact(profile)
    if art.is_complete() and not force:
        meta = art.metadata()
        print(f"[generator] reusing {art.path} (trained {meta.get('finished_at', '?')}); --force retrains")
        return meta
    state = distributed_state()
    with (
        state.main_process_first()
    ):  # under a launcher, only the main process prepares and finishes the folder
        out = art.begin(force) if state.is_main_process else art.path
    tok = load_tokenizer(profile.model)
    train_rows, held_rows = generator_split(profile, tok)
    mix = {s: int(n) for s, n in zip(*np.unique(train_rows["source"], return_counts=True), strict=True)}
    meta = train_sft(
        profile.model, profile.generator.train, generator_examples(tok, train_rows), out, name="generator"
    )
    if not state.is_main_process:
        return meta
    t0 = time.time()
    held = generator_examples(tok, held_rows)
    release_memory()  # the training's model and optimizer state
    base, btok = load_model_and_tokenizer(profile.model)
    before = completion_loss(base, btok, held)
    del base
    release_memory()
    trained, ttok = load_trained(profile.model, out)
    after = completion_loss(trained, ttok, held)
    held_rows.to_json(out / "heldout_triples.jsonl")
    meta = art.finish(
        {
            **meta,
            "data_mix": mix,
            "heldout_rows": len(held),
            "heldout_loss_before": before,
            "heldout_loss_after": after,
            "heldout_eval_seconds": time.time() - t0,
            "prompt_version": prompt_version(),
        },
        profile,
    )
    print(f"[generator] held-out loss per reasoning token: base {before:.3f} -> fine-tuned {after:.3f}")
    return meta
