"""The runtime needs numpy, onnxruntime and rich only: it never imports torch or nltk."""

import os
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


SERVE_AND_ASK = textwrap.dedent("""
    import json, re, subprocess, sys, urllib.request
    server = subprocess.Popen([sys.executable, "-m", "runtime.serve", "--model", sys.argv[1],
                               "--port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        while True:
            line = server.stderr.readline()
            found = re.search(r"http://127\\.0\\.0\\.1:(\\d+)/v1", line)
            assert line, "the server did not start"
            if found:
                break
        body = json.dumps({"prompt": "To", "max_tokens": 12, "temperature": 0}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{found.group(1)}/v1/completions",
                                         data=body, headers={"Content-Type": "application/json"})
        reply = json.load(urllib.request.urlopen(request, timeout=60))
        assert len(reply["choices"][0]["text"]) == 12, reply
        print("served ok")
    finally:
        server.terminate()
        assert server.wait(timeout=30) == 0
""")


@pytest.mark.slow
def test_the_readme_runtime_install_has_no_torch_and_samples_and_serves(
        exported_tiny: dict[str, Path], exported_tiny_gan: dict[str, Path], tmp_path: Path) -> None:
    """`pip install .` (README, "Runtime and chat") in a fresh venv: numpy, onnxruntime and rich
    only; a GPT, a layer stack and a GAN file exported by the full install sample there, and the
    server answers a request."""
    from export.stack import export_stack_onnx
    from runtime.tokenizer import CharTokenizer
    from textgen_core.models.stack.model import Stack
    from textgen_core.models.stack.spec import StackConfig

    stack_file = export_stack_onnx(
        Stack(StackConfig(vocab_size=3, block_size=8, n_embd=8, n_head=2, layers=[
            {"type": "Embedding"}, {"type": "LSTM"}, {"type": "TemporalDense"},
            {"type": "CrossEntropyLoss"}])).eval(),
        CharTokenizer(list("\nab")), tmp_path / "stack.onnx")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                              str(REPO)], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert install.returncode == 0, install.stderr[-2000:]
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True,
                            text=True).stdout.lower()
    for heavy in ("torch", "nltk", "matplotlib", "onnxscript", "onnx=", "tokenizers"):
        assert heavy not in listed, listed
    away = tmp_path / "elsewhere"  # not the checkout: the installed packages are what runs
    away.mkdir()
    for model, flags, check in (
            (exported_tiny["onnx"], ["--prompt", "To be", "--max-new-tokens", "40", "--seed", "3"],
             lambda out: len(out) == 41),  # 40 characters and a newline
            (stack_file, ["--prompt", "ab", "--max-new-tokens", "9", "--seed", "1"],
             lambda out: len(out) == 10),
            (exported_tiny_gan["onnx"], ["--num-samples", "3", "--seed", "2"],
             lambda out: len(out.splitlines()) == 3)):
        result = subprocess.run([str(python), "-m", "runtime.chat", "--model", str(model), *flags],
                                cwd=away, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and check(result.stdout), (model, result.stdout, result.stderr)
    served = subprocess.run([str(python), "-c", SERVE_AND_ASK, str(exported_tiny["onnx"])], cwd=away,
                            capture_output=True, text=True, timeout=180)
    assert "served ok" in served.stdout, served.stderr
    training = subprocess.run([str(python), "-m", "textgen_core.train"], cwd=away,
                              capture_output=True, text=True, timeout=60)
    assert training.returncode == 1 and "Traceback" not in training.stderr
    assert "needs PyTorch" in training.stderr


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
