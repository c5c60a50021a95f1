# SPDX-License-Identifier: GPL-3.0-or-later
"""A node's fetch of a Blender release from the farm's store: the newest of the series, checked
against the digest stored beside it, unpacked only inside its folder, and fetched once."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from brenda_node.releases import Releases
from shared.core.config import load_config
from shared.core.errors import BrendaError
from shared.core.urls import S3Url


def release(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as bundle:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            bundle.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def store(aws: str, boto_client: Any, tmp_path: Path) -> tuple[Releases, Any]:
    boto_client("s3").create_bucket(Bucket="studio")
    releases = Releases(load_config(), S3Url("studio", "projects/blender/"), tmp_path / "blenders")
    return releases, boto_client("s3")


def put(s3: Any, version: str, archive: bytes, digest: str | None = None) -> None:
    key = f"projects/blender/blender-{version}-linux-x64.tar.xz"
    s3.put_object(Bucket="studio", Key=key, Body=archive)
    s3.put_object(
        Bucket="studio", Key=f"{key}.sha256", Body=digest or hashlib.sha256(archive).hexdigest()
    )


def test_the_newest_release_of_the_series_is_fetched_once(
    store: tuple[Releases, Any], tmp_path: Path
) -> None:
    releases, s3 = store
    for version in ("5.2.1", "5.2.10", "5.3.0"):
        put(s3, version, release({f"blender-{version}-linux-x64/blender": b"#!/bin/sh\n"}))
    program = releases.program("5.2")
    assert program == tmp_path / "blenders" / "5.2.10" / "blender-5.2.10-linux-x64" / "blender"
    s3.delete_object(Bucket="studio", Key="projects/blender/blender-5.2.10-linux-x64.tar.xz")
    put(s3, "5.2.10", b"changed in the store, not fetched again")
    assert releases.program("5.2") == program
    assert releases.program("4.2") is None


@pytest.mark.parametrize(
    ("archive", "digest", "problem"),
    [
        (
            release({"blender-5.2.4-linux-x64/blender": b"x"}),
            "0" * 64,
            "does not match its SHA-256",
        ),
        (release({"../../evil": b"x"}), None, "cannot be unpacked"),
        (b"not a tarball", None, "cannot be unpacked"),
    ],
    ids=["tampered", "climbs out", "damaged"],
)
def test_a_release_that_is_not_what_it_says_is_refused(
    store: tuple[Releases, Any], tmp_path: Path, archive: bytes, digest: str | None, problem: str
) -> None:
    releases, s3 = store
    put(s3, "5.2.4", archive, digest)
    with pytest.raises(BrendaError, match=problem):
        releases.program("5.2")
    assert not (tmp_path / "evil").exists() and not (tmp_path / "blenders" / "5.2.4").exists()
