"""The optional generation engines, in the output format of `inference.TransformersBackend`: vLLM (GPU) and
CTranslate2 (CPU, greedy only), with the conversion CTranslate2 needs. Both are imported lazily."""

from __future__ import annotations

from pathlib import Path

from transformers import PreTrainedTokenizerBase

from reasoning_infused.pipeline.inference import Generation, Progress, length_sorted_batches


class VLLMBackend:
    """Same output format, through vLLM (GPU, optional dependency `pip install vllm`; imported lazily)."""

    name = "vllm"

    def __init__(self, model_path: str, tok: PreTrainedTokenizerBase, **llm_kwargs):
        try:
            from vllm import LLM
        except ImportError as e:  # pragma: no cover - needs a GPU machine
            raise RuntimeError(
                "the vllm backend (augment.backend or classifier.backend = vllm) needs `pip install vllm` "
                "on a GPU machine"
            ) from e
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
        answer_scoring=None,  # not supported: Generation.answer_scores stays None
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


class CT2Backend:
    """Same output format, through CTranslate2 on the CPU (optional dependency `pip install ctranslate2`); greedy
    decoding only (sampling there is not reproducible).

    `model_dir` is a converted model (`ct2_convert`); `compute_type` "float32" decodes the same tokens as
    transformers (a test checks it on the tiny model), "int8" quantises the weights when loading (faster,
    different text: its effect on quality is to be measured, never assumed)."""

    name = "ct2"

    def __init__(
        self, model_dir: str, tok: PreTrainedTokenizerBase, compute_type: str = "float32", threads: int = 0
    ):
        try:
            import ctranslate2
        except ImportError as e:
            raise RuntimeError("the ct2 backend needs `pip install ctranslate2`") from e
        self.generator = ctranslate2.Generator(
            str(model_dir), device="cpu", compute_type=compute_type, intra_threads=threads
        )
        self.tok = tok
        self.compute_type = compute_type

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
        answer_scoring=None,  # not supported: Generation.answer_scores stays None
    ):
        if do_sample:
            raise ValueError(
                "sampled decoding is not reproducible with CTranslate2 (its set_random_seed does not fix sampling: "
                "OpenNMT/CTranslate2 issue 1757); use backend transformers for sampling"
            )
        tok = self.tok
        enc = tok(prompts, add_special_tokens=False)["input_ids"]
        progress = Progress(len(prompts), desc)
        for batch in length_sorted_batches([len(e) for e in enc], batch_size):
            results = self.generator.generate_batch(
                [tok.convert_ids_to_tokens(enc[i]) for i in batch],
                max_length=max_new_tokens,
                sampling_topk=1,  # greedy
                include_prompt_in_result=False,
                end_token=tok.eos_token,
                return_end_token=True,
            )
            gens = []
            for r in results:
                ids = r.sequences_ids[0]
                stop = bool(ids) and ids[-1] == tok.eos_token_id
                ids = ids[:-1] if stop else ids
                gens.append(
                    Generation(
                        tok.decode(ids, skip_special_tokens=True).strip(),
                        len(ids),
                        "stop" if stop else "length",
                    )
                )
            progress.update(gens)
            yield batch, gens
        progress.close()


def ct2_convert(model_dir: Path, out_dir: Path) -> Path:
    """Convert a full (merged) checkpoint to CTranslate2 at float32, once: `out_dir` is written under a temporary
    name and renamed, so an interrupted conversion is never mistaken for a finished one."""
    from ctranslate2.converters import TransformersConverter

    out_dir = Path(out_dir)
    if (out_dir / "model.bin").exists():
        return out_dir
    tmp = out_dir.with_name(out_dir.name + ".partial")
    TransformersConverter(str(model_dir)).convert(str(tmp), quantization="float32", force=True)
    tmp.rename(out_dir)
    return out_dir
