"""Developer sessions: `nox` runs tests and lint; `nox -s bench`, `nox -s demo` and `nox -s gpu` on
request."""

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True

# Pinned first so pip keeps this build rather than resolving a newer multi-GB CUDA wheel.
TORCH = "torch==2.13.0"


def install_project(session: nox.Session) -> None:
    session.install(TORCH)
    session.install("-e", ".[train,test]")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the pytest suite (slow end-to-end tests included)."""
    install_project(session)
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check the code with ruff."""
    session.install("ruff")
    session.run("ruff", "check", ".", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Measure speed against the references in one run and print ratio tables."""
    install_project(session)
    session.install("-e", ".[bench]")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def gpu(session: nox.Session) -> None:
    """Prove every GPU path in one run of under 8 minutes on a CUDA machine (`-- --dry-run` on a CPU)."""
    install_project(session)
    session.run("python", "-m", "benchmarks.gpu_check", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Train the nano preset on shakespeare, export it to ONNX and sample with the runtime."""
    install_project(session)
    out = f"{session.create_tmp()}/demo.pt"
    session.run("python", "-m", "textgen_core.train", "--preset", "nano", "--max-iters", "300",
                "--out", out, "--overwrite", *session.posargs)
    session.run("python", "-m", "export", "onnx", out)
    session.run("python", "-m", "runtime.chat", "--model", out.replace(".pt", ".onnx"),
                "--prompt", "ROMEO:", "--max-new-tokens", "200", "--seed", "1")
