"""A real Prometheus server for tests: loopback, temporary config and data folder,
a free port.  The binary comes from the Debian package ``prometheus`` (``make
test`` installs it when it can); ``PROMETHEUS_MISSING`` is the skip reason
when it is absent."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

PROMETHEUS = shutil.which("prometheus")
PROMETHEUS_MISSING = ("the 'prometheus' server binary is not installed: install the Debian "
                      "package 'prometheus' (make test does it when run as root with apt-get)")
ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "config" / "prometheus" / "jacobian_ik_rules.yml"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


class PrometheusServer:
    """``prometheus`` scraping ``targets`` every second, evaluating the project's rules
    every second.  Use as a context manager."""

    def __init__(self, folder: Path, targets, job: str, scrape_interval: str = "1s"):
        self.folder = Path(folder)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": scrape_interval,
                       "evaluation_interval": scrape_interval},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": job,
                                "static_configs": [{"targets": list(targets)}]}],
        }
        self.config_file = self.folder / "prometheus.yml"
        self.config_file.write_text(yaml.safe_dump(config))
        self.log = self.folder / "prometheus.log"
        self.process = None

    def __enter__(self):
        self._log_stream = open(self.log, "w")
        self.process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.config_file}",
             f"--storage.tsdb.path={self.folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self._log_stream, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("prometheus exited:\n" + self.log.read_text()[-3000:])
            try:
                http_get(self.url + "/-/ready", 2.0)
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("prometheus not ready:\n" + self.log.read_text()[-3000:])

    def __exit__(self, *exc):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_stream.close()

    def query(self, expr: str) -> list:
        """Instant query through the HTTP API; the result vector (or matrix)."""
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        body = json.loads(http_get(url, 10.0))
        if body.get("status") != "success":
            raise RuntimeError(f"query failed: {expr}: {body}")
        return body["data"]["result"]
