"""The faiss build as an extra (cpu or gpu), the error without one, and which device and faiss build
a step ran with: in its registry record and in ``harness systems --device``."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import faiss
import pytest
import torch

from harness import device, registry
from harness.cli import main
from tests.helpers import REPO


def test_faiss_is_an_extra_in_two_builds() -> None:
    """Both builds install the ``faiss`` module, so neither is a core dependency."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith("faiss")]
    extras = project["optional-dependencies"]
    assert [d.split(">")[0] for d in extras["cpu"]] == ["faiss-cpu"]
    assert [d.split(">")[0] for d in extras["gpu"]] == ["faiss-gpu"]


def test_without_faiss_only_systems_that_need_it_fail_with_one_line(tmp_path: Path) -> None:
    script = ("import sys\n"
              "sys.modules['faiss'] = None  # as if no faiss build were installed\n"
              "import harness.cli, harness.steps, harness.registry\n"
              "from harness.device import MissingExtra\n"
              "from harness.cli import main\n"
              "assert main(['systems', 'bm25']) == 0\n"
              "print('dense exit', main(['systems', 'dpr-xm']))\n"
              "try:\n"
              "    import systems.dense.faiss_index\n"
              "except MissingExtra as e:\n"
              "    print('import:', e)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.splitlines() == [
        "harness: error: system 'dpr-xm': faiss is not installed: pip install -e '.[cpu]', or '.[gpu]' on a CUDA server"]
    assert "dense exit 2" in done.stdout
    assert f"import: {device.FAISS_MISSING}" in done.stdout


def test_a_record_says_which_device_and_faiss_build_ran(workdir: Path) -> None:
    record = registry.produce("index", {"device-test": 1}, lambda out: {"outputs": {}})
    ran = record.data["runtime"]
    assert ran["device"] == ("cuda" if torch.cuda.is_initialized() else "cpu")
    assert (ran["torch"], ran["torch_cuda"]) == (torch.__version__, torch.version.cuda)
    build = ran["faiss"]
    assert build["package"] in ("faiss-cpu", "faiss-gpu") and build["version"] == faiss.__version__
    assert metadata.version(build["package"]) == faiss.__version__ == record.data["packages"][build["package"]]
    assert build["gpu_support"] == hasattr(faiss, "StandardGpuResources") and build["gpus"] == faiss.get_num_gpus()


def test_a_step_without_torch_or_faiss_records_no_device() -> None:
    code = ("import json, sys; from harness import registry; "
            "print(json.dumps([registry.runtime(), sorted(m for m in ('torch', 'faiss') if m in sys.modules)]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert json.loads(done.stdout) == [{}, []]


def fake_torch(initialised: bool, available: bool) -> SimpleNamespace:
    cuda = SimpleNamespace(is_initialized=lambda: initialised, is_available=lambda: available,
                           device_count=lambda: 2, get_device_name=lambda i: f"NVIDIA H200 #{i}")
    return SimpleNamespace(__version__="2.13.0", version=SimpleNamespace(cuda="13.0"), cuda=cuda)


def test_a_cuda_device_is_named_only_where_torch_uses_it() -> None:
    """A record names the GPUs only when the step initialised CUDA; ``--device`` when CUDA is available."""
    gpu = {"device": "cuda", "torch": "2.13.0", "torch_cuda": "13.0", "gpus": ["NVIDIA H200 #0", "NVIDIA H200 #1"]}
    assert device.torch_device(fake_torch(True, True), initialised_only=True) == gpu
    assert device.torch_device(fake_torch(False, True), initialised_only=True) == {
        "device": "cpu", "torch": "2.13.0", "torch_cuda": "13.0"}
    assert device.torch_device(fake_torch(False, True), initialised_only=False) == gpu
    lines = device.describe({**gpu, "faiss": {"package": "faiss-gpu", "version": "1.15.1", "gpu_support": True,
                                              "gpus": 2}})
    assert lines == ["device: cuda (NVIDIA H200 #0, NVIDIA H200 #1), torch 2.13.0, built for CUDA 13.0",
                     "faiss:  faiss-gpu 1.15.1, GPU support compiled in, 2 GPU(s) visible"]


def test_systems_device_prints_the_device_and_faiss_build(capsys: pytest.CaptureFixture) -> None:
    assert main(["systems", "--device"]) == 0
    lines = capsys.readouterr().out.splitlines()
    where = "cuda (" if torch.cuda.is_available() else "cpu (no CUDA device visible)"
    assert lines[0].startswith(f"device: {where}") and f"torch {torch.__version__}" in lines[0]
    package = device.faiss_package()
    assert lines[1].startswith(f"faiss:  {package} {metadata.version(package)}, ")
    assert lines[1].endswith("CPU only") != hasattr(faiss, "StandardGpuResources")


def test_faiss_package_by_name_is_the_one_installed_files_name() -> None:
    """The quick lookup by known names agrees with mapping every installed distribution's files."""
    device.faiss_package.cache_clear()
    assert device.faiss_package() == "+".join(sorted(set(metadata.packages_distributions()["faiss"])))
