# SPDX-License-Identifier: GPL-3.0-or-later
"""Test fixtures: an isolated home and environment, and moto's server on loopback.

No test reaches the internet or reads the machine's AWS credentials: HOME, the AWS config files
and every BRENDA_* variable are replaced for each test, and AWS calls go to moto's server.
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.servicequotas.models import ServiceQuotasBackend

from shared.cli.common import OUR_LOGGERS
from shared.workstation.local_aws import local_endpoint, local_environment, reset_endpoint


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HOME and no AWS or Brenda settings from the machine."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in list(os.environ):
        if name.startswith(("BRENDA_", "AWS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return home


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Undo what a command run in-process did to our loggers (handlers bound to captured
    streams), so that caplog sees every record."""
    yield
    for name in OUR_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
        logger.setLevel(logging.NOTSET)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server, started once per test session on a free loopback port."""
    saved: dict[str, str] = {}
    with local_endpoint(saved) as endpoint:
        yield endpoint


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty AWS (moto's state reset) that boto3 reaches through AWS_ENDPOINT_URL."""
    reset_endpoint(moto_endpoint)
    for name, value in local_environment(moto_endpoint).items():
        monkeypatch.setenv(name, value)
    return moto_endpoint


@pytest.fixture
def boto_client(aws: str) -> Any:
    """A plain boto3 client factory, to look at AWS independently of Brenda's code."""

    def make(service: str) -> Any:
        return boto3.client(service, region_name="us-east-1", endpoint_url=aws)

    return make


@pytest.fixture
def spot_quotas(aws: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """The account's EC2 spot vCPU quotas, by quota code, as moto's Service Quotas serves them.

    moto's server (in this process) holds default quotas for VPC only; this adds EC2's with the
    values the test puts in the returned dictionary, so that the requests still go to the
    endpoint over HTTP and are answered there."""

    quotas: dict[str, float] = {}
    served = ServiceQuotasBackend.get_service_quota

    def get_service_quota(
        backend: ServiceQuotasBackend, service_code: str, quota_code: str
    ) -> dict[str, Any]:
        if service_code == "ec2" and quota_code in quotas:
            return {
                "ServiceCode": "ec2",
                "QuotaCode": quota_code,
                "QuotaName": quota_code,
                "Value": quotas[quota_code],
                "Unit": "None",
                "Adjustable": True,
                "GlobalQuota": False,
            }
        return served(backend, service_code, quota_code)

    monkeypatch.setattr(ServiceQuotasBackend, "get_service_quota", get_service_quota)
    return quotas


@dataclass(frozen=True)
class Studio:
    """A studio project made by tests/packing/studio.py, and its reference render of frame 2."""

    work: Path
    blend: Path
    reference: Path

    @property
    def sources(self) -> tuple[Path, Path]:
        return self.work / "studio", self.work / "outside"

    @contextmanager
    def moved_away(self) -> Iterator[None]:
        """The project and the files outside it moved elsewhere, as on a node."""
        for source in self.sources:
            source.rename(source.with_name(f"{source.name}.away"))
        try:
            yield
        finally:
            for source in self.sources:
                source.with_name(f"{source.name}.away").rename(source)


def make_studio(folder: Path, *options: str, python: Path | None = None) -> Studio:
    """The studio project made in ``folder`` by the bpy of ``python`` (default: this one's)."""
    folder.mkdir(parents=True, exist_ok=True)
    builder = Path(__file__).with_name("packing") / "studio.py"
    result = subprocess.run(
        [str(python or sys.executable), str(builder), str(folder), *options],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("STUDIO ")]
    assert result.returncode == 0 and lines, result.stdout[-3000:] + result.stderr[-3000:]
    made = json.loads(lines[-1].removeprefix("STUDIO "))
    return Studio(folder, Path(made["blend"]), Path(made["reference"]))


@pytest.fixture(scope="session")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Studio:
    """Shared by tests that only read it: opening it in Blender would write caches into it."""
    return make_studio(tmp_path_factory.mktemp("studio"))


@pytest.fixture(scope="session")
def broken_studio(tmp_path_factory: pytest.TempPathFactory) -> Studio:
    """The same project with textures/inside.png deleted after the reference render."""
    return make_studio(tmp_path_factory.mktemp("broken-studio"), "--missing-texture")


@dataclass(frozen=True)
class Faults:
    """The projects packing once failed on, made by tests/packing/faults.py."""

    work: Path
    geometry_nodes: Path
    """A .blend whose Geometry Nodes modifier keeps a ``bakes`` pointer to nothing."""
    nested: Path
    """A .blend linking a library that links another library from another folder."""
    reference: Path
    """``nested``'s frame 1, rendered from the sources."""

    @contextmanager
    def nested_moved_away(self) -> Iterator[None]:
        """The nested-library project moved elsewhere, as on a node."""
        source = self.work / "nested"
        source.rename(source.with_name("nested.away"))
        try:
            yield
        finally:
            source.with_name("nested.away").rename(source)


@pytest.fixture(scope="session")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Faults:
    """Shared by tests that only read them (or move them away and back)."""
    folder = tmp_path_factory.mktemp("faults")
    builder = Path(__file__).with_name("packing") / "faults.py"
    result = subprocess.run(
        [sys.executable, str(builder), str(folder)], capture_output=True, text=True, check=False
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("FAULTS ")]
    assert result.returncode == 0 and lines, result.stdout[-3000:] + result.stderr[-3000:]
    made = json.loads(lines[-1].removeprefix("FAULTS "))
    return Faults(
        folder, Path(made["geometry_nodes"]), Path(made["nested"]), Path(made["reference"])
    )


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A test HTTP handler: ``reply`` sends a text body; nothing is logged."""

    def reply(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serving_http(server: http.server.HTTPServer) -> Iterator[str]:
    """Serve ``server`` on a thread; yields its URL; shuts it down and closes it after."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield f"http://{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
