"""The agent image's build steps that need no build: the source digest that tells a stale
image, and the one-line errors of a build command (the build itself: `make image`, and the
lab's Kubernetes tests run what it built)."""

from __future__ import annotations

import pytest

from netcheck.lab import image
from netcheck.lab.net import LabError


def test_the_source_digest_follows_the_sources_only(tmp_path):
    (tmp_path / "netcheck" / "__pycache__").mkdir(parents=True)
    (tmp_path / "probes").mkdir()
    (tmp_path / "netcheck" / "a.py").write_text("x = 1\n")
    (tmp_path / "probes" / "Dockerfile").write_text("FROM x\n")
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    first = image.source_digest(tmp_path)
    (tmp_path / "netcheck" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "notes.txt").write_text("not built into the image\n")
    assert image.source_digest(tmp_path) == first
    (tmp_path / "probes" / "Dockerfile").write_text("FROM y\n")
    assert image.source_digest(tmp_path) != first
    (tmp_path / "probes" / "Dockerfile").write_text("FROM x\n")
    (tmp_path / "netcheck" / "b.py").write_text("")  # a new module, even empty
    assert image.source_digest(tmp_path) != first


def test_a_failing_build_step_is_one_line_naming_it_and_its_log(tmp_path):
    with pytest.raises(LabError, match=r"^no-such-builder is missing \(base\): run `make sys"):
        image._run(["no-such-builder", "bud"], "base")
    log = tmp_path / "image.log"
    script = "echo step one; echo 'E: Unable to locate package python3-nothing' >&2; exit 100"
    with pytest.raises(LabError) as failed:
        image._run(["sh", "-c", script], "debootstrap bookworm", str(log))
    assert str(failed.value) == (
        "debootstrap bookworm failed (exit 100): E: Unable to locate package python3-nothing "
        f"(all of it in {log})"
    )
    assert log.read_text().startswith("step one\n")
    assert image._run(["sh", "-c", "echo id-1"], "buildah from") == "id-1\n"
