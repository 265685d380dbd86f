import pytest
from conftest import write
from reasoning_infused.data.emotion import (
    LABELS,
    load_emotion,
    load_ood,
    parse_emotion_file,
    summarize_emotion,
)
from reasoning_infused.data.files import DataError
from reasoning_infused.data.reasoning_triples import load_reasoning_triples
from reasoning_infused.data.rows import stratified_subsample


def _emotion_dir(tmp_path, train="i feel fine;joy\ni am sad;sadness\n"):
    d = tmp_path / "emotion"
    write(d / "train.txt", train)
    write(d / "val.txt", "so angry;anger\n")
    write(d / "test.txt", "scared;fear\nwow;surprise\n")
    return d


def test_good_folder_loads_with_hub_label_order(tmp_path):
    d = _emotion_dir(tmp_path)
    ds = load_emotion("train", str(d))
    assert ds.features["label"].names == LABELS == ["sadness", "joy", "love", "anger", "fear", "surprise"]
    assert ds["text"] == ["i feel fine", "i am sad"] and ds["label"] == [1, 0]
    assert len(load_emotion("test", str(d))) == 2


def test_text_with_semicolons_keeps_them(tmp_path):
    ds = parse_emotion_file(write(tmp_path / "t.txt", "a;b;c;love\n"))
    assert ds["text"] == ["a;b;c"] and ds["label"] == [2]


@pytest.mark.parametrize(
    "content, match",
    [
        (b"ok text;joy\nno separator here\n", r"t\.txt:2: no ';'"),
        (b"ok;joy\nfine;happy\n", r"t\.txt:2: unknown label 'happy'"),
        (b"ok;joy\n   ;anger\n", r"t\.txt:2: empty text"),
        (b"ok;joy\nbad \xff\xfe bytes;joy\n", r"t\.txt:2: bytes that are not UTF-8"),
        (b"", r"no rows"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, content, match):
    with pytest.raises(DataError, match=match):
        parse_emotion_file(write(tmp_path / "t.txt", content))


def test_missing_file_and_split(tmp_path):
    d = _emotion_dir(tmp_path)
    (d / "val.txt").unlink()
    with pytest.raises(DataError, match=r"val\.txt.*not found"):
        load_emotion("validation", str(d))
    with pytest.raises(DataError, match="unknown split"):
        load_emotion("dev", str(d))
    with pytest.raises(DataError, match="not found"):
        load_emotion("train", str(tmp_path / "nowhere"))


def test_real_data_matches_known_counts():
    splits = {s: load_emotion(s) for s in ("train", "validation", "test")}
    summary = {s.split: s for s in summarize_emotion(splits)}
    assert [summary[s].rows for s in ("train", "validation", "test")] == [16000, 2000, 2000]
    assert all(s.matches_known for s in summary.values())


def test_stratified_subsample_keeps_proportions_and_is_seeded():
    ds = load_emotion("train")
    a = stratified_subsample(ds, 2000, seed=0)
    b = stratified_subsample(ds, 2000, seed=0)
    assert len(a) == 2000 and a["text"] == b["text"]
    assert stratified_subsample(ds, 2000, seed=1)["text"] != a["text"]
    share_full = ds["label"].count(5) / len(ds)
    assert abs(a["label"].count(5) / 2000 - share_full) < 0.001
    assert len(stratified_subsample(ds, 0, 0)) == len(ds)


def test_reasoning_triples_local_sources():
    ds = load_reasoning_triples(["ecqa", "esnli"])
    assert set(ds["source"]) == {"ecqa", "esnli"}
    assert len(ds) == 7112 + 9842 + 9824
    row = ds[0]
    assert row["question"] and row["answer"] and row["reasoning"]
    assert "\\n" not in row["question"]  # literal \n became a line break


def test_reasoning_tsv_bad_line(tmp_path):
    write(tmp_path / "flan_cot" / "ecqa_train.tsv", "q\ta\tr\nonly two\tfields\n")
    with pytest.raises(DataError, match=r"ecqa_train\.tsv:2: expected 3"):
        load_reasoning_triples(["ecqa"], str(tmp_path))
    with pytest.raises(DataError, match="unknown reasoning source"):
        load_reasoning_triples(["nope"], str(tmp_path))


def test_ood_sets_are_evaluation_only():
    g = load_ood("goemotions")
    i = load_ood("isear")
    assert len(g) == 622 and len(i) == 4101
    assert all(g["evaluation_only"])
    assert {LABELS[x] for x in i["label"]} == {"joy", "sadness", "anger", "fear"}


def test_ood_bad_header(tmp_path):
    write(tmp_path / "isear" / "mapped.tsv", "sentence\temotion\nx\tjoy\n")
    with pytest.raises(DataError, match=r"mapped\.tsv:1: expected the header"):
        load_ood("isear", str(tmp_path))
