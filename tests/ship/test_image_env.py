"""The container image's environment, built without Docker, runs the image's own commands.

``scripts/build-env.sh`` is what the Dockerfile's build stage runs; here it builds the same
virtualenv (hash-checked runtime lock + the project wheel) in a temp dir, and the test runs
the Dockerfile's ENTRYPOINT/CMD (``acrcheck serve``, first with ``--check-config``) and its
HEALTHCHECK command with the image's ENV, from outside the source tree. Slow (a fresh venv,
~15 s with a warm pip cache): marked ``slow``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.slack import APP_TOKEN, BOT_TOKEN
from tests.ship.conftest import ROOT, ScopedFakeSlack, free_port, wait_until
from tests.ship.dockerfile import env_of, exec_form, healthcheck_cmd, parse

pytestmark = pytest.mark.slow
STAGES = parse(ROOT / "Dockerfile")
BUILD, FINAL = STAGES[0], STAGES[-1]


@pytest.fixture(scope="module")
def image_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    assert any("scripts/build-env.sh /opt/venv" in run for run in BUILD.all("RUN")), "Dockerfile must use build-env.sh"
    venv = tmp_path_factory.mktemp("image") / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_NO_CACHE_DIR", "VIRTUAL_ENV", "PYTHONPATH")}
    env["PYTHON"] = sys.executable  # the same CPython minor version as the image's base
    started = time.monotonic()
    build = subprocess.run(
        ["sh", str(ROOT / "scripts" / "build-env.sh"), str(venv), str(ROOT)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    print(f"image environment built in {time.monotonic() - started:.1f}s")
    yield venv


def _image_env(venv: Path, **extra: str) -> dict[str, str]:
    """The image's ENV (PATH pointing at our venv instead of /opt/venv), nothing from the developer."""
    env = {"HOME": str(venv.parent), "LANG": "C.UTF-8"}
    for key, value in env_of(FINAL).items():
        env[key] = value.replace("/opt/venv", str(venv)).replace("$PATH", os.environ.get("PATH", "/usr/bin:/bin"))
    env["ACRCHECK_DATABASE_URL"] = f"sqlite:///{venv.parent / 'acrcheck.db'}"  # /data is not writable here
    env.update(extra)
    return env


def test_image_env_is_the_wheel_without_dev_tools(image_env: Path) -> None:
    site = subprocess.run(
        [str(image_env / "bin" / "python"), "-c", "import bot, knowledge; print(bot.__file__)"],
        capture_output=True, text=True, cwd=image_env.parent, check=True,
    )  # fmt: skip
    assert str(image_env) in site.stdout, "acrcheck must come from the installed wheel, not the source tree"
    for tool in ("pytest", "ruff", "mypy", "pip-compile", "hadolint"):
        assert not (image_env / "bin" / tool).exists(), f"{tool} must not be in the image"


def test_the_wheel_carries_the_compiled_search(image_env: Path) -> None:
    """The Dockerfile's build stage has a compiler, so the wheel it installs holds bot/engine/_knn.c built."""
    check = (
        "import bot.engine._knn as k, bot.engine.learned as l; assert l.NativeIndex is k.KnnIndex; print(k.__file__)"
    )
    found = subprocess.run([str(image_env / "bin" / "python"), "-c", check], capture_output=True, text=True,
                           cwd=image_env.parent, timeout=60)  # fmt: skip
    assert found.returncode == 0, found.stderr
    assert str(image_env) in found.stdout and found.stdout.strip().endswith(".so")


def test_offline_demo_runs_in_the_image(image_env: Path) -> None:
    """``docker run IMAGE diagnose …``: the knowledge base ships inside the wheel."""
    paste = "Error response from daemon: Get https://myreg.azurecr.io/v2/: denied: client with IP '203.0.113.7' is not allowed access."
    command = [*exec_form(FINAL.last("ENTRYPOINT") or ""), "diagnose", "--json", paste]
    result = subprocess.run(command, env=_image_env(image_env), capture_output=True, text=True, cwd=image_env.parent,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert '"cause": "registry-public-access"' in result.stdout


def test_entry_command_check_config(image_env: Path) -> None:
    command = [*exec_form(FINAL.last("ENTRYPOINT") or ""), *exec_form(FINAL.last("CMD") or ""), "--check-config"]
    assert command[:2] == ["acrcheck", "serve"]
    env = _image_env(image_env, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN=APP_TOKEN)
    result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=image_env.parent, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "configuration OK" in result.stdout and "Socket Mode" in result.stdout


def test_entry_command_serves_and_healthcheck_passes(image_env: Path, fake_slack: ScopedFakeSlack) -> None:
    port = free_port()
    env = _image_env(
        image_env,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN=APP_TOKEN,
        ACRCHECK_SLACK_API_URL=fake_slack.api_url,
        ACRCHECK_PORT=str(port),
    )
    health = healthcheck_cmd(FINAL)
    assert health, "the Dockerfile needs a HEALTHCHECK"
    assert subprocess.run(health, env=env, cwd=image_env.parent, capture_output=True, timeout=30).returncode == 1
    command = [*exec_form(FINAL.last("ENTRYPOINT") or ""), *exec_form(FINAL.last("CMD") or "")]
    proc = subprocess.Popen(command, env=env, cwd=image_env.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until(
            lambda: proc.poll() is not None
            or subprocess.run(health, env=env, cwd=image_env.parent, capture_output=True, timeout=30).returncode == 0,
            timeout=30,
        )
        assert proc.poll() is None
        ready = wait_until(
            lambda: (r := httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2, trust_env=False)).status_code == 200
            and r
        )
        assert ready.json()["slack"] == "connected"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        output = proc.stdout.read().decode() if proc.stdout else ""
    assert output.lstrip().startswith("{"), "the image logs JSON lines (ACRCHECK_LOG_FORMAT=json)"
