import pytest
from reasoning_infused.experiment.config import ProfileError, available_profiles, load_profile


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


def test_yaml_float_syntax_without_a_dot_is_a_number():
    # YAML 1.1 reads 1e-4 as a string; the README's own example must work
    assert (
        load_profile("smoke", ["classifier.train.learning_rate=1e-4"]).classifier.train.learning_rate == 1e-4
    )
    with pytest.raises(ProfileError, match="classifier.train.learning_rate"):
        load_profile("smoke", ["classifier.train.learning_rate=fast"])


def test_experiment_name_is_the_profile_or_derived_from_the_changed_settings():
    assert load_profile("smoke").experiment == "smoke"
    a = load_profile("smoke", ["classifier.train.learning_rate=1e-4"])
    b = load_profile("smoke", ["classifier.train.learning_rate=0.0001"])
    assert a.experiment == b.experiment != "smoke"  # the same setting, however written
    assert a.experiment.startswith("smoke-learning_rate=0.0001-")
    assert a.overrides == {"classifier.train.learning_rate": 0.0001}
    # same leaf name in two sections: different experiments
    c = load_profile("smoke", ["generator.train.learning_rate=1e-4"])
    assert c.experiment != a.experiment
    # an override equal to the profile's own value changes nothing
    assert load_profile("smoke", ["data.train_size=36"]).experiment == "smoke"
    assert load_profile("smoke", experiment="mine").experiment == "mine"


@pytest.mark.parametrize("bad", ["../x", "/etc", "a/b", ".hidden", ""])
def test_unsafe_experiment_names_are_refused(bad):
    with pytest.raises(ProfileError, match="not allowed"):
        load_profile("smoke", experiment=bad or "a b")


def test_profile_name_cannot_be_overridden_and_old_seed_key_explains_the_split(tmp_path):
    with pytest.raises(ProfileError, match="--name"):
        load_profile("smoke", ["name=default"])
    f = tmp_path / "p.yaml"
    f.write_text("seed: 3\n")
    with pytest.raises(ProfileError, match="data.seed"):
        load_profile(str(f))


def test_results_folder_refuses_other_settings(isolated_outputs):
    from reasoning_infused.experiment.config import claim_results_dir

    p = load_profile("smoke", experiment="claim-test")
    claim_results_dir(p)
    claim_results_dir(p)  # same settings: fine
    other = load_profile("smoke", ["data.train_size=12"], experiment="claim-test")
    with pytest.raises(ProfileError, match="other settings"):
        claim_results_dir(other)


def test_a_setting_added_later_at_its_default_does_not_orphan_old_results(isolated_outputs):
    import yaml
    from reasoning_infused.experiment.config import claim_results_dir

    p = load_profile("smoke", experiment="added-later")
    claim_results_dir(p)
    saved = p.results_dir / "profile.yaml"
    old = yaml.safe_load(saved.read_text())
    del old["classifier"]["reasoning_transform"]  # results written before that setting existed
    saved.write_text(yaml.safe_dump(old))
    claim_results_dir(p)  # the default value is the old behaviour: same settings
    saved.write_text(yaml.safe_dump(old))
    other = load_profile("smoke", ["classifier.reasoning_transform=shuffle_words"], experiment="added-later")
    with pytest.raises(ProfileError, match="reasoning_transform"):
        claim_results_dir(other)


def test_the_lock_pins_every_package_at_the_version_the_committed_results_name():
    """`make setup` installs requirements.lock: exact versions of every package, and for the packages that decide
    numbers the versions recorded in results/default/metrics.json (transformers 5.24.0, accelerate 1.15.0, ...)."""
    import json
    import re

    from reasoning_infused.base.locations import REPO_ROOT
    from reasoning_infused.base.provenance import lock_hash

    lock = (REPO_ROOT / "requirements.lock").read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", lock, flags=re.M))
    assert all(
        not line.strip() or line.startswith("#") or "==" in line or line.startswith("    ")
        for line in lock.splitlines()
    )
    recorded = json.loads((REPO_ROOT / "results/default/metrics.json").read_text())["package_versions"]
    for name, version in recorded.items():
        assert pins[name] == version.replace("+cpu", ""), name
    assert re.fullmatch(r"[0-9a-f]{12}", lock_hash())
    assert "requirements.lock" in (REPO_ROOT / "Makefile").read_text()
