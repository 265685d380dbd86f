import torch
from reasoning_infused.config import load_profile
from reasoning_infused.inference import TransformersBackend, generate_all, label_token_ids, score_labels
from reasoning_infused.modeling import load_model_and_tokenizer, materialize_smollm2


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
