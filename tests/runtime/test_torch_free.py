"""The runtime needs numpy, onnxruntime and rich only: it never imports torch or nltk."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

BLOCKER = textwrap.dedent("""
    import sys
    BLOCKED = ("torch", "nltk", "onnx", "textgen_core", "export", "matplotlib", "tokenizers")

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED and name != "onnxruntime" and not name.startswith("onnxruntime"):
                raise ImportError(f"runtime must not import {name}")
            return None

    sys.meta_path.insert(0, Blocker())
    import runtime
    gen = runtime.load(sys.argv[1])
    text = "".join(gen.generate("To be", max_new_tokens=20, temperature=0.8, seed=1))
    assert len(text) == 20
    import runpy
    sys.argv = ["runtime.chat", "--model", sys.argv[1], "--prompt", "To", "--max-new-tokens", "10"]
    try:
        runpy.run_module("runtime.chat", run_name="__main__")
    except SystemExit as exit:
        assert exit.code == 0
    assert not any(m.split(".")[0] in ("torch", "nltk") for m in sys.modules)
    print("torch-free ok")
""")


def test_runtime_runs_with_torch_and_nltk_blocked(exported_tiny: dict[str, Path]) -> None:
    result = subprocess.run([sys.executable, "-c", BLOCKER, str(exported_tiny["onnx"])], cwd=REPO,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert "torch-free ok" in result.stdout


@pytest.mark.slow
def test_runtime_in_a_venv_with_only_numpy_onnxruntime_rich(exported_tiny: dict[str, Path], tmp_path: Path) -> None:
    from importlib.metadata import version

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    pins = [f"numpy=={version('numpy')}", f"onnxruntime=={version('onnxruntime')}", f"rich=={version('rich')}"]
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *pins],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    app = tmp_path / "app"
    shutil.copytree(REPO / "runtime", app / "runtime", ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run([str(python), "-m", "runtime.chat", "--model", str(exported_tiny["onnx"]),
                             "--prompt", "To be", "--max-new-tokens", "40", "--seed", "3"],
                            cwd=app, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout) == 41  # 40 characters and a newline
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True).stdout
    assert "torch" not in listed and "nltk" not in listed


GAN_BLOCKER = BLOCKER.split("import runtime\n")[0] + textwrap.dedent("""
    import runtime
    sampler = runtime.load(sys.argv[1])
    sentences = sampler.sample(4, seed=1)
    assert len(sentences) == 4 and sentences == sampler.sample(4, seed=1)
    import runpy
    sys.argv = ["runtime.chat", "--model", sys.argv[1], "--num-samples", "3", "--seed", "2"]
    try:
        runpy.run_module("runtime.chat", run_name="__main__")
    except SystemExit as exit:
        assert exit.code == 0
    assert not any(m.split(".")[0] in ("torch", "nltk") for m in sys.modules)
    print("torch-free gan ok")
""")


def test_gan_runtime_runs_with_torch_and_nltk_blocked(exported_tiny_gan: dict[str, Path]) -> None:
    result = subprocess.run([sys.executable, "-c", GAN_BLOCKER, str(exported_tiny_gan["onnx"])], cwd=REPO,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert "torch-free gan ok" in result.stdout
