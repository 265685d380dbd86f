import os
import subprocess
import sys

from conftest import write


def run(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "reasoning_infused", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def test_data_command_prints_known_counts():
    r = run("data", "--profile", "smoke")
    assert r.returncode == 0, r.stderr
    assert "16000 rows" in r.stdout and "2000 rows" in r.stdout
    assert "sadness 4666, joy 5362, love 1304, anger 2159, fear 1937, surprise 572" in r.stdout
    assert "DIFFERS" not in r.stdout


def test_broken_emotion_file_gives_a_one_line_error(tmp_path):
    d = tmp_path / "emotion"
    write(d / "train.txt", "fine;joy\nthis line has no separator\n")
    write(d / "val.txt", "x;joy\n")
    write(d / "test.txt", "x;joy\n")
    r = run("data", "--profile", "smoke", env={"RI_EMOTION_DIR": str(d)})
    assert r.returncode == 2
    err = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "train.txt:2" in err[0] and "Traceback" not in r.stderr


def test_bad_profile_override_is_a_clear_error():
    r = run("data", "--profile", "smoke", "--set", "data.train_sise=3")
    assert r.returncode == 2 and "data.train_sise" in r.stderr
