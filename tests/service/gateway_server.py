"""Our gateway as a real subprocess (`pureai serve`) on a free loopback port, for the tests.

    with Gateway.start(env={...}) as gw:
        httpx.post(gw.url + "/v1/chat/completions", headers=gw.auth(key), json=...)

`Gateway.start` waits for GET /ready (polling until it answers 200, or the process dies, or a
deadline passes) and keeps the server's stderr in a file, for the tests that read its logs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import httpx

ADMIN_KEY = "adm-test-Zq8p3LrT0vWc"
SECRET_KEY = "test-secret-key-nR4vT8wQ2zL6pX0cY5mB"
"""PUREAI_SECRET_KEY of every test gateway: deployments registered with an `api_key` are sealed."""
LOOPBACK = "127.0.0.0/8,::1"
"""PUREAI_ALLOW_PRIVATE_UPSTREAMS of every test gateway: the operator allows loopback, where the
fake upstreams (and so the deployments the tests register) run. tests/service/test_ssrf.py unsets it."""
PUREAI = Path(sys.executable).with_name("pureai")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Gateway:
    def __init__(self, port: int, process: subprocess.Popen[bytes], log: IO[bytes], log_path: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process = process
        self._log = log
        self.log_path = log_path
        self.http = httpx.Client(base_url=self.url, timeout=30.0, trust_env=False)

    @classmethod
    def start(
        cls, env: dict[str, str | None], *, workers: int = 1, timeout: float = 90.0, ready: str = "/ready"
    ) -> Gateway:
        """Start `pureai serve` with `env` over os.environ (a None value unsets a variable); return when
        `ready` answers 200 (`/health` for a gateway whose /ready is meant to fail)."""
        port = free_port()
        full = {
            **os.environ,
            "PUREAI_ADMIN_KEY": ADMIN_KEY,
            "PUREAI_SECRET_KEY": SECRET_KEY,
            "PUREAI_ALLOW_PRIVATE_UPSTREAMS": LOOPBACK,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "PUREAI_LOG_LEVEL": "info",
        }
        for name, value in env.items():
            if value is None:
                full.pop(name, None)
            else:
                full[name] = value
        fd, name = tempfile.mkstemp(prefix="pureai-gateway-", suffix=".log")
        os.close(fd)
        log_path = Path(name)
        log = log_path.open("wb")
        command = [str(PUREAI), "serve", "--port", str(port), "--workers", str(workers)]
        process = subprocess.Popen(command, env=full, stdout=log, stderr=subprocess.STDOUT)
        gw = cls(port, process, log, log_path)
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                gw.stop()
                raise RuntimeError(f"the gateway exited with {process.returncode}:\n{gw.logs()}")
            try:
                if gw.http.get(ready, timeout=2.0).status_code == 200:
                    return gw
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                gw.stop()
                raise RuntimeError(f"the gateway was not ready within {timeout}s:\n{gw.logs()}")
            time.sleep(0.1)  # polling for readiness, not synchronising a test

    def logs(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def admin(self) -> dict[str, str]:
        return {"x-api-key": ADMIN_KEY}

    def new_key(self, **spec: Any) -> str:
        r = self.http.post("/v1/admin/keys", headers=self.admin(), json=spec)
        assert r.status_code == 201, r.text
        return str(r.json()["key"])

    def stop(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def catalogue(primary: str, backup: str) -> str:
    """A catalogue TOML whose models are served by the fake upstreams at `primary` and `backup`."""
    return f'''
[[models]]
id = "gpt-4o-mini"
owned_by = "openai"
litellm_model = "openai/gpt-4o-mini"
input_per_mtok = 0.15
output_per_mtok = 0.60
context_window = 128000
cached_input_per_mtok = 0.075
quality_priors = {{ code = 0.72, math = 0.66, reasoning = 0.68, knowledge = 0.78, writing = 0.80, chat = 0.83, extraction = 0.84 }}

[[models.providers]]
id = "openai"
type = "primary"
api_base = "{primary}"
api_key_env = "TEST_OPENAI_KEY"

[[models.providers]]
id = "groq"
type = "backup"
api_base = "{backup}"
api_key_env = "TEST_GROQ_KEY"

[[models]]
id = "codestral-latest"
owned_by = "mistral"
litellm_model = "openai/codestral-latest"
input_per_mtok = 0.30
output_per_mtok = 0.90
context_window = 32000
api_base = "{primary}"
api_key_env = "TEST_MISTRAL_KEY"
quality_priors = {{ code = 0.86, math = 0.50, reasoning = 0.52, knowledge = 0.50, writing = 0.50, chat = 0.55, extraction = 0.60 }}

[[models]]
id = "gpt-4o"
owned_by = "openai"
litellm_model = "openai/gpt-4o"
input_per_mtok = 2.50
output_per_mtok = 10.00
context_window = 128000
api_base = "{primary}"
quality_priors = {{ code = 0.82, math = 0.70, reasoning = 0.80, knowledge = 0.88, writing = 0.88, chat = 0.89, extraction = 0.89 }}

[[models]]
id = "claude-3-haiku"
owned_by = "anthropic"
litellm_model = "openai/claude-3-haiku"
input_per_mtok = 0.25
output_per_mtok = 1.25
context_window = 200000
api_base = "{backup}"
quality_priors = {{ code = 0.62, math = 0.50, reasoning = 0.58, knowledge = 0.72, writing = 0.76, chat = 0.80, extraction = 0.80 }}

[[models]]
id = "pureai/gemma-3-4b-it"
owned_by = "pureai"
input_per_mtok = 0.02
output_per_mtok = 0.04
context_window = 131072
api_base = "{primary}"
quality_priors = {{ default = 0.55 }}

[[models]]
id = "pureai/DeepSeek-R1-Distill-Llama-8B"
owned_by = "pureai"
input_per_mtok = 0.03
output_per_mtok = 0.06
context_window = 131072
api_base = "{backup}"
quality_priors = {{ default = 0.5 }}

[[models]]
id = "disabled-model"
owned_by = "nobody"
enabled = false
input_per_mtok = 1.0
output_per_mtok = 1.0
context_window = 8192
quality_priors = {{ default = 0.5 }}

[[models]]
id = "unconfigured-model"
owned_by = "nobody"
litellm_model = "openai/unconfigured-model"
input_per_mtok = 1.0
output_per_mtok = 1.0
context_window = 8192
api_key_env = "TEST_UNSET_KEY_NOBODY_SETS"
quality_priors = {{ default = 0.3 }}
'''
