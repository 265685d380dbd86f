import torch
from reasoning_infused.experiment.config import load_profile
from reasoning_infused.pipeline.inference import TransformersBackend, generate_all
from reasoning_infused.pipeline.modeling import load_model_and_tokenizer, materialize_smollm2
from reasoning_infused.pipeline.scoring import label_token_ids, score_labels


def test_default_model_is_materialised_once_as_an_ordinary_checkpoint():
    path = materialize_smollm2()
    assert (path / "model.safetensors").exists()
    cfg = (path / "config.json").read_text()
    assert "quantization_config" not in cfg and '"llama"' in cfg


def test_tiny_model_uses_the_real_tokenizer_in_fp32():
    model, tok = load_model_and_tokenizer(load_profile("smoke").model)
    assert model.config.vocab_size == len(tok) == 49152
    assert next(model.parameters()).dtype == torch.float32
    assert tok.pad_token_id == tok.eos_token_id  # SmolLM2: pad is eos, so masks must not rely on pad ids
    assert len({ids[0] for ids in label_token_ids(tok)}) == 6  # labels start with distinct tokens


def test_label_scores_equal_a_plain_forward_pass():
    model, tok = load_model_and_tokenizer(load_profile("smoke").model)
    prompts = ["a short prompt Answer:", "a much longer prompt with several more words in it Answer:"]
    scores = score_labels(model, tok, prompts, batch_size=2)
    first = [ids[0] for ids in label_token_ids(tok)]
    for i, p in enumerate(prompts):
        ids = torch.tensor([tok.encode(p, add_special_tokens=False)])
        with torch.no_grad():
            ref = torch.log_softmax(model(ids).logits[0, -1], -1)[first]
        assert torch.allclose(torch.tensor(scores[i]), ref.double(), atol=1e-4)


def test_batched_left_padded_generation_equals_one_by_one():
    model, tok = load_model_and_tokenizer(load_profile("smoke").model)
    prompts = ["one", "a somewhat longer prompt here", "mid length prompt"]
    b = TransformersBackend(model, tok)
    batched = [g.text for g in generate_all(b, prompts, 6, batch_size=3)]
    single = [generate_all(b, [p], 6, batch_size=1)[0].text for p in prompts]
    assert batched == single


def _chat_prompts(tok, texts):
    from reasoning_infused.data.prompts import classifier_prompt

    return [classifier_prompt(tok, t) for t in texts]


def test_common_prefix_length_leaves_every_row_a_token_of_its_own():
    from reasoning_infused.pipeline.inference import common_prefix_length

    assert common_prefix_length([[1, 2, 3], [1, 2, 4]]) == 2
    assert common_prefix_length([[1, 2], [1, 2, 3]]) == 1
    assert common_prefix_length([[5], [5]]) == 0
    assert common_prefix_length([[1, 2, 3], [9, 2, 3]]) == 0


def _generate_one(model, tok, ids: list[int], n_new: int, eos: int, **decoding) -> tuple[list[int], str]:
    """transformers' generate on one prompt, cut at eos: (generated ids, finish reason)."""
    with torch.no_grad():
        g = model.generate(
            input_ids=torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=n_new,
            eos_token_id=eos,
            pad_token_id=tok.pad_token_id,
            **decoding,
        )[0, len(ids) :].tolist()
    return (g[: g.index(eos)], "stop") if eos in g else (g, "length")


# rows of very different lengths: they finish, and leave the batch, at different steps
GREEDY_TEXTS = [
    "i feel great",
    "a much longer text about a day that went badly wrong",
    "so so",
    "why me",
    "we won the match today and everyone cheered",
    "nothing",
]


def test_fast_greedy_decoding_equals_generate_when_rows_finish_at_different_steps():
    from reasoning_infused.pipeline.inference import buffered_generate

    model, tok = load_model_and_tokenizer(load_profile("smoke").model)
    enc = [tok.encode(p, add_special_tokens=False) for p in _chat_prompts(tok, GREEDY_TEXTS)]
    n_new = 10

    def reference(eos):  # transformers' generate, one prompt at a time, cut at eos
        return [_generate_one(model, tok, ids, n_new, eos, do_sample=False) for ids in enc]

    free = reference(tok.eos_token_id)
    # a token the random model emits at different steps in different rows, used as end of turn: rows then
    # finish at different steps and leave the batch
    stops = {}
    for g, _ in free:
        for step, t in enumerate(g[1:], 1):
            stops.setdefault(t, set()).add(step)
    eos = max(stops, key=lambda t: (len(stops[t]), t))
    want = reference(eos)
    assert len({len(g) for g, _ in want}) > 1 and {"stop"} <= {r for _, r in want}
    got = buffered_generate(model, enc, n_new, eos, tok.pad_token_id, drop_fraction=0.1)
    assert got == want


def test_label_scores_with_a_shared_chat_prefix_equal_a_plain_forward_pass():
    model, tok = load_model_and_tokenizer(load_profile("smoke").model)
    prompts = [
        p + "Answer:" for p in _chat_prompts(tok, ["i feel great", "a longer text about my awful day", "ok"])
    ]
    labels = [
        "joy",
        "joy-filled",
        "anger",
    ]  # " joy" and " joy-filled" share a first token: the per-label path
    for labs in (None, labels):
        kw = {} if labs is None else {"labels": labs}
        scores = score_labels(model, tok, prompts, batch_size=3, **kw)
        for i, p in enumerate(prompts):
            ids = tok.encode(p, add_special_tokens=False)
            for k, lab in enumerate(labs or ["sadness", "joy", "love", "anger", "fear", "surprise"]):
                lab_ids = label_token_ids(tok, [lab])[0]
                full = torch.tensor([ids + lab_ids])
                with torch.no_grad():
                    logp = torch.log_softmax(model(full).logits[0], -1)
                n = 1 if labs is None else len(lab_ids)
                ref = sum(float(logp[len(ids) - 1 + t, lab_ids[t]]) for t in range(n))
                assert abs(scores[i, k] - ref) < 1e-4, (p, lab)


def test_labels_scored_during_greedy_generation_equal_a_forward_pass_on_the_generated_prefix():
    """Q->RA's labels after the reasoning, taken from the generation pass: for every row that writes the trigger
    (here an n-gram the random model emits; in the study the answer prefix), the captured log-probabilities are
    those of a plain forward pass on the prompt plus the generated tokens up to the trigger, rows leaving the
    batch included, and the generated tokens do not change."""
    from reasoning_infused.pipeline.inference import AnswerScoring, buffered_generate

    model, tok = load_model_and_tokenizer(load_profile("smoke").model)
    enc = [tok.encode(p, add_special_tokens=False) for p in _chat_prompts(tok, GREEDY_TEXTS)]
    n_new = 12
    free = buffered_generate(model, enc, n_new, tok.eos_token_id, tok.pad_token_id)
    stops: dict[int, set[int]] = {}
    for g, _ in free:  # an end of turn the random model emits at different steps: rows leave the batch
        for step, t in enumerate(g[2:], 2):
            stops.setdefault(t, set()).add(step)
    eos = max(stops, key=lambda t: (len(stops[t]), t))
    plain = buffered_generate(model, enc, n_new, eos, tok.pad_token_id, drop_fraction=0.1)

    def first_end(g: list[int], trigger: list[int]) -> int | None:  # tokens up to the trigger's first end
        for k in range(len(trigger), len(g) + 1):
            if g[k - len(trigger) : k] == trigger:
                return k
        return None

    grams = {tuple(g[k : k + n]) for g, _ in plain for n in (1, 2) for k in range(len(g) - n + 1)}
    # the trigger written by most rows before their last step (so that the next logits exist)
    trigger = list(
        max(
            sorted(grams),
            key=lambda t: sum((k := first_end(g, list(t))) is not None and k < n_new for g, _ in plain),
        )
    )
    label_ids = [5, 100, 2000, tok.eos_token_id]
    scored: dict = {}
    got = buffered_generate(
        model,
        enc,
        n_new,
        eos,
        tok.pad_token_id,
        drop_fraction=0.1,
        answer_scoring=AnswerScoring(trigger, label_ids),
        answer_scores=scored,
    )
    assert got == plain
    expected = {j for j, (g, _) in enumerate(plain) if (k := first_end(g, trigger)) is not None and k < n_new}
    assert len(expected) >= 2 and set(scored) == expected
    for j, a in scored.items():
        g = plain[j][0]
        assert a.prefix_ids == g[: first_end(g, trigger)]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([enc[j] + a.prefix_ids])).logits[0, -1]
        want = torch.log_softmax(logits.float(), -1)[label_ids]
        assert torch.allclose(torch.tensor(a.logprobs), want, atol=1e-4), (j, a.logprobs, want)


def test_top_p_sampler_draws_from_the_renormalised_nucleus_at_the_temperature():
    from reasoning_infused.pipeline.inference import TopPSampler

    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    # temperature 0.5 squares the probabilities before renormalising: 0.25, 0.09, 0.0225, 0.0025 (/0.365); the
    # nucleus of 0.9 keeps the first two (0.685 + 0.247 > 0.9 first at the second), renormalised to 0.735, 0.265
    sampler = TopPSampler(0.5, 0.9, torch.Generator().manual_seed(0))
    logits = probs.log().repeat(20000, 1)
    drawn = torch.bincount(sampler(logits), minlength=4).double() / 20000
    want = torch.tensor([0.25, 0.09, 0.0, 0.0]) / 0.34
    assert drawn[2:].sum() == 0
    assert torch.allclose(drawn, want.double(), atol=0.015), drawn


def test_buffered_sampling_of_one_row_equals_generate_under_the_same_seed():
    """The sampled path (self-consistency) draws what `model.generate(do_sample=True)` draws: same warpers, same
    random stream; in a batch, rows then differ from generate only in which draws of the stream they get."""
    from reasoning_infused.pipeline.inference import TopPSampler, buffered_generate

    model, tok = load_model_and_tokenizer(load_profile("smoke").model)
    enc = [tok.encode(p, add_special_tokens=False) for p in _chat_prompts(tok, GREEDY_TEXTS[:3])]
    n_new = 12
    for seed, ids in enumerate(enc):
        torch.manual_seed(seed)
        want, _ = _generate_one(
            model, tok, ids, n_new, tok.eos_token_id, do_sample=True, temperature=0.7, top_p=0.95, top_k=None
        )
        sampler = TopPSampler(0.7, 0.95, torch.Generator().manual_seed(seed))
        [(got, _)] = buffered_generate(
            model, [ids], n_new, tok.eos_token_id, tok.pad_token_id, sampler=sampler
        )
        assert got == want and len(got) >= 1  # `want` is cut at eos, as `got` is
        assert got != buffered_generate(model, [ids], n_new, tok.eos_token_id, tok.pad_token_id)[0][0]
    b = TransformersBackend(model, tok)
    prompts = _chat_prompts(tok, GREEDY_TEXTS)

    def sampled(seed: int) -> list[str]:
        gens = generate_all(b, prompts, 8, batch_size=3, do_sample=True, temperature=0.7, seed=seed)
        return [g.text for g in gens]

    assert sampled(4) == sampled(4) != sampled(5)
