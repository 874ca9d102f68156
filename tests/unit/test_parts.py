"""Result files packed into ConfigMap-sized stores and put back together (core/parts.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelanalysis import job_commands
from modelanalysis.core.parts import join_parts, pack_files


def test_small_files_stay_whole_in_one_store() -> None:
    files = {"a.csv": "x,y\n1,2\n", "report.html": "<html></html>"}
    assert pack_files(files, 1000) == [files]


@pytest.mark.parametrize("text", ["row,1\n" * 5000, "é€𝄞," * 3000], ids=["ascii", "multibyte"])
def test_a_file_past_the_limit_is_cut_into_parts_and_joined_back_whole(text: str) -> None:
    files = {"metrics-model-gpu.csv": text, "small.csv": "a\n"}
    stores = pack_files(files, 4096)
    assert len(stores) > 1
    for store in stores:
        assert sum(len(k.encode()) + len(v.encode()) for k, v in store.items()) <= 4096
    keys = [k for store in stores for k in store]
    assert "metrics-model-gpu.csv.part-000" in keys and "small.csv" in keys
    union = {k: v for store in stores for k, v in store.items()}
    assert join_parts(union) == files


def test_parts_are_joined_in_their_order_whatever_order_they_arrive_in() -> None:
    data = {"f.csv.part-002": "c", "f.csv.part-000": "a", "f.csv.part-001": "b", "g.csv": "g"}
    assert join_parts(data) == {"f.csv": "abc", "g.csv": "g"}


def test_the_results_job_writes_each_file_whole_from_its_parts(tmp_path: Path) -> None:
    """`model-analyzer copy-results` over a folder laid out as the projected ConfigMaps mount it."""
    source, destination = tmp_path / "in", tmp_path / "out" / "runs" / "example"
    source.mkdir()
    files = {"metrics-model-gpu.csv": "GPU,1\n" * 2000, "report.html": "<p>"}
    for store in pack_files(files, 2048):
        for key, value in store.items():
            (source / key).write_text(value)
    (source / "..data").mkdir()  # what a mounted ConfigMap holds beside its keys
    assert job_commands.run("copy-results", [str(source), str(destination)]) == 0
    assert {p.name: p.read_text() for p in destination.iterdir()} == files
