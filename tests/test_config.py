import pytest
from reasoning_infused.config import ProfileError, available_profiles, load_profile


def test_packaged_profiles_load():
    assert {"smoke", "default", "paper"} <= set(available_profiles())
    for name in ("smoke", "default", "paper"):
        p = load_profile(name)
        assert p.name == name
    assert load_profile("paper").classifier.train.full_finetune
    assert load_profile("paper").classifier.train.learning_rate == 2e-5
    assert load_profile("default").data.test_size == 0  # the full test set


def test_unknown_key_names_the_key(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("classifier:\n  train:\n    learnin_rate: 0.1\n")
    with pytest.raises(ProfileError, match=r"classifier\.train\.learnin_rate"):
        load_profile(str(f))


@pytest.mark.parametrize(
    "yaml_text, key",
    [
        ("classifier:\n  train:\n    batch_size: two\n", "classifier.train.batch_size"),
        ("classifier:\n  train:\n    learning_rate: -1\n", "classifier.train.learning_rate"),
        ("model:\n  source: gpt\n", "model.source"),
        ("augment:\n  do_sample: 'yes'\n", "augment.do_sample"),
        ("classifier:\n  variants: [qa, qx]\n", "classifier.variants"),
        ("generator:\n  sources: {nope: 3}\n", "generator.sources.nope"),
        ("data:\n  train_size: 1.5\n", "data.train_size"),
        ("classifier:\n  backend: tgi\n", "classifier.backend"),
        ("classifier:\n  vllm_gpu_memory_utilization: 1.5\n", "classifier.vllm_gpu_memory_utilization"),
    ],
)
def test_bad_values_name_the_key(tmp_path, yaml_text, key):
    f = tmp_path / "p.yaml"
    f.write_text(yaml_text)
    with pytest.raises(ProfileError, match=key.replace(".", r"\.")):
        load_profile(str(f))


def test_overrides_apply_and_are_validated():
    p = load_profile("smoke", ["data.train_size=12", "classifier.train.learning_rate=0.01"])
    assert p.data.train_size == 12 and p.classifier.train.learning_rate == 0.01
    with pytest.raises(ProfileError, match="data.nope"):
        load_profile("smoke", ["data.nope=1"])


def test_unknown_profile_lists_available():
    with pytest.raises(ProfileError, match="available"):
        load_profile("nonexistent")


def test_fingerprint_changes_with_settings():
    a = load_profile("smoke")
    b = load_profile("smoke", ["augment.max_new_tokens=99"])
    assert a.fingerprint("augment") != b.fingerprint("augment")
    assert a.fingerprint("model") == b.fingerprint("model")
