"""What ``pip install .`` puts into site-packages: the genjax package and its console scripts, nothing else."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = {"genjax-train", "genjax-compare", "genjax-sweep", "genjax-mode-coverage", "genjax-make-mixture"}


def test_the_wheel_holds_only_genjax_and_its_console_scripts(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("genjax", "experiments", "benchmarks"):  # the checkout's packages: only genjax may be installed
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                           str(tmp_path / "dist"), str(source)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (tmp_path / "dist").glob("genjax-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"genjax", "genjax-0.1.0.dist-info"}
    assert "genjax/cli/train.py" in names and "genjax/models/gan.py" in names
    entry_points = zipfile.ZipFile(wheel).read("genjax-0.1.0.dist-info/entry_points.txt").decode()
    assert {line.split(" = ")[0] for line in entry_points.splitlines() if " = " in line} == SCRIPTS
