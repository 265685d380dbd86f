"""A trained artifact as a model: loaded (LoRA merged), merged to full weights once (vLLM), or converted to
CTranslate2 once; the base model for zero-shot."""

from __future__ import annotations

from pathlib import Path

from reasoning_infused.experiment.artifacts import Artifact, classifier_artifact, generator_artifact
from reasoning_infused.experiment.settings import Profile


def load_generator(p: Profile):
    """(model, tokenizer) of the trained generator (LoRA merged)."""
    from reasoning_infused.pipeline.modeling import load_trained

    return load_trained(p.model, generator_artifact(p).require())


def load_classifier(p: Profile, variant: str):
    """(model, tokenizer) of a trained classifier, or of the base model for 'zero_shot'."""
    from reasoning_infused.pipeline.modeling import load_model_and_tokenizer, load_trained

    if variant == "zero_shot":
        model, tok = load_model_and_tokenizer(p.model)
        return model.eval(), tok
    return load_trained(p.model, classifier_artifact(p, variant).require())


def merged_model_path(p: Profile, art: Artifact) -> Path:
    """Full weights of a trained artifact for engines that cannot apply LoRA (vLLM): merged once, cached inside."""
    from reasoning_infused.pipeline.modeling import merged_checkpoint

    return merged_checkpoint(p.model, art.require())


def ct2_model_path(p: Profile, art: Artifact) -> Path:
    """A trained artifact converted to CTranslate2 (float32) once, cached inside it as `ct2/`."""
    from reasoning_infused.pipeline.engines import ct2_convert

    return ct2_convert(merged_model_path(p, art), art.require() / "ct2")
