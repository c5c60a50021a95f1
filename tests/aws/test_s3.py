# SPDX-License-Identifier: GPL-3.0-or-later
"""S3 transfers against moto's server: progress, multipart, cancel leaves nothing behind."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from shared.aws import s3
from shared.aws.session import cloud_errors, make_client
from shared.core.config import load_config
from shared.core.errors import Cancelled, CloudError
from shared.core.progress import Progress

PART = 5 * 1024 * 1024


@pytest.fixture
def client(aws: str) -> Any:
    return make_client("s3", load_config())


@pytest.fixture
def bucket(client: Any) -> str:
    s3.ensure_bucket(client, "brenda-test", "us-east-1")
    return "brenda-test"


def random_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_ensure_bucket_makes_a_private_bucket_once(client: Any, boto_client: Any) -> None:
    s3.ensure_bucket(client, "frames-eu", "eu-west-1")
    s3.ensure_bucket(client, "frames-eu", "eu-west-1")
    raw = boto_client("s3")
    block = raw.get_public_access_block(Bucket="frames-eu")["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    assert raw.get_bucket_location(Bucket="frames-eu")["LocationConstraint"] == "eu-west-1"


def test_multipart_upload_and_download_with_progress(
    client: Any, bucket: str, tmp_path: Path
) -> None:
    source = random_file(tmp_path / "project.tar", 2 * PART + 1234)
    up = Progress()
    s3.upload_file(client, source, bucket, "jobs/project.tar", up, threshold=PART)
    assert (up.done, up.total) == (source.stat().st_size, source.stat().st_size)
    info = s3.head(client, bucket, "jobs/project.tar")
    assert info is not None and info.size == source.stat().st_size
    assert info.etag.endswith("-3")
    down = Progress()
    target = tmp_path / "copy.tar"
    s3.download_file(client, bucket, "jobs/project.tar", target, down, threshold=PART)
    assert digest(target) == digest(source)
    assert down.done == source.stat().st_size


def test_cancelled_upload_leaves_no_object_and_no_parts(
    client: Any, bucket: str, tmp_path: Path
) -> None:
    source = random_file(tmp_path / "big.bin", 4 * PART)
    progress = Progress()
    progress.on_change = lambda current: current.cancel() if current.done >= PART else None
    with pytest.raises(Cancelled, match="Uploading big.bin was cancelled"):
        s3.upload_file(client, source, bucket, "big.bin", progress, threshold=PART, concurrency=1)
    assert PART <= progress.done < 4 * PART
    assert s3.head(client, bucket, "big.bin") is None
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_cancelled_download_leaves_no_file(client: Any, bucket: str, tmp_path: Path) -> None:
    source = random_file(tmp_path / "big.bin", 3 * PART)
    s3.upload_file(client, source, bucket, "big.bin", threshold=PART)
    progress = Progress()
    progress.on_change = lambda current: current.cancel() if current.done > 0 else None
    target = tmp_path / "out" / "big.bin"
    target.parent.mkdir()
    with pytest.raises(Cancelled):
        s3.download_file(client, bucket, "big.bin", target, progress, threshold=PART)
    assert list(target.parent.iterdir()) == []


def test_listing_and_head(client: Any, bucket: str, tmp_path: Path) -> None:
    for name in ("shot1/frame_000002.png", "shot1/frame_000001.png", "shot2/frame_000001.png"):
        client.put_object(Bucket=bucket, Key=name, Body=b"png")
    keys = [info.key for info in s3.list_objects(client, bucket, "shot1/")]
    assert keys == ["shot1/frame_000001.png", "shot1/frame_000002.png"]
    assert s3.head(client, bucket, "shot1/missing.png") is None


def test_missing_bucket_is_one_sentence(client: Any, tmp_path: Path) -> None:
    source = random_file(tmp_path / "small.bin", 10)
    with pytest.raises(CloudError) as caught, cloud_errors("uploading small.bin"):
        s3.upload_file(client, source, "no-such-bucket", "small.bin")
    assert str(caught.value).startswith("AWS refused uploading small.bin")
    assert "NoSuchBucket" in str(caught.value)
    assert "\n" not in str(caught.value)
