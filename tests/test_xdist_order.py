"""Under xdist, the heaviest modules are handed out first (tests/conftest.py), the rest in xdist's order."""

from __future__ import annotations

from pathlib import Path

from conftest import HEAVY_S, declared_seconds, heaviest_first


def test_the_heaviest_modules_lead_and_the_rest_keep_their_order() -> None:
    scopes = ["many.py", "light.py", "spark.py", "killed.py", "middle.py"]
    seconds = {"many.py": 20, "light.py": 0, "spark.py": 160, "killed.py": HEAVY_S, "middle.py": HEAVY_S - 1}
    assert heaviest_first(scopes, seconds) == ["spark.py", "killed.py", "many.py", "light.py", "middle.py"]


def test_a_modules_seconds_are_read_from_its_source(tmp_path: Path) -> None:
    module = tmp_path / "test_x.py"
    slow = "pytest.mark.slow(" + "seconds"  # split, or this module would read as a heavy one
    module.write_text(f"pytestmark = {slow}=40)\n\n@{slow}=150)\ndef test_a(): ...\n")
    assert declared_seconds(module) == 150
    assert declared_seconds(tmp_path / "missing.py") == 0
    real = Path(__file__).with_name("test_spark_engine.py")
    assert declared_seconds(real) >= HEAVY_S
