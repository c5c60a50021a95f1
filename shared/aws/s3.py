# SPDX-License-Identifier: GPL-3.0-or-later
"""S3 transfers through s3transfer: parallel multipart, progress, cancel. No bpy module use.

A cancelled or failed upload leaves no object (s3transfer aborts the multipart upload); a
cancelled or failed download leaves no file (s3transfer writes to a temporary name first).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..core.errors import Cancelled, CloudError
from ..core.progress import Progress
from .session import error_code

MULTIPART_THRESHOLD = 8 * 1024 * 1024
CANCEL_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    """The ETag without quotes; changes whenever the object's content changes."""
    modified: datetime
    metadata: dict[str, str] = field(default_factory=dict)
    """Its user metadata (``x-amz-meta-*``), where a HEAD read it."""


def transfer_config(*, concurrency: int = 10, threshold: int = MULTIPART_THRESHOLD) -> Any:
    from boto3.s3.transfer import TransferConfig  # noqa: PLC0415 - lazy boto3

    return TransferConfig(
        multipart_threshold=threshold,
        multipart_chunksize=threshold,
        max_concurrency=concurrency,
        use_threads=True,
    )


def _transfer(
    client: Any,
    progress: Progress,
    submit: Any,
    *,
    concurrency: int,
    threshold: int,
) -> None:
    """Run one s3transfer transfer, reporting bytes and cancelling it when asked.

    Cancelling goes through s3transfer's own future, which lets parts in flight finish and then
    cleans up (aborts the multipart upload, deletes the temporary download file).
    """
    from boto3.s3.transfer import create_transfer_manager  # noqa: PLC0415 - lazy boto3
    from s3transfer.exceptions import CancelledError  # noqa: PLC0415 - lazy boto3
    from s3transfer.subscribers import BaseSubscriber  # noqa: PLC0415 - lazy boto3

    class ReportBytes(BaseSubscriber):  # type: ignore[misc]
        def on_progress(self, future: Any, bytes_transferred: int, **kwargs: Any) -> None:
            progress.advance(bytes_transferred)

    config = transfer_config(concurrency=concurrency, threshold=threshold)
    with create_transfer_manager(client, config) as manager:
        future = submit(manager, [ReportBytes()])
        while not future.done():
            if progress.wait_for_cancel(CANCEL_POLL_SECONDS):
                future.cancel()
                break
        try:
            future.result()
        except CancelledError as error:
            raise Cancelled(f"{progress.description} was cancelled.") from error


def upload_file(
    client: Any,
    path: Path,
    bucket: str,
    key: str,
    progress: Progress | None = None,
    *,
    concurrency: int = 10,
    threshold: int = MULTIPART_THRESHOLD,
    content_type: str | None = None,
    metadata: dict[str, str] | None = None,
    only_new: bool = False,
) -> bool:
    """Upload ``path`` to ``s3://bucket/key`` (with ``metadata``); ``progress`` counts bytes
    and can cancel. ``only_new``: unless the key holds an object already (an S3 conditional
    write, ``If-None-Match: *``), which stays; returns whether it uploaded."""
    progress = progress or Progress()
    progress.start(f"Uploading {path.name}", path.stat().st_size)
    extra: dict[str, Any] = {}
    if content_type:
        extra["ContentType"] = content_type
    if metadata:
        extra["Metadata"] = metadata

    def submit(manager: Any, subscribers: list[Any]) -> Any:
        return manager.upload(
            str(path), bucket, key, extra_args=extra or None, subscribers=subscribers
        )

    if not only_new:
        _transfer(client, progress, submit, concurrency=concurrency, threshold=threshold)
        return True
    with _if_none_match(client, bucket, key):
        try:
            _transfer(client, progress, submit, concurrency=concurrency, threshold=threshold)
        except Exception as error:
            if error_code(error) == "PreconditionFailed":
                return False
            raise
    return True


@contextmanager
def _if_none_match(client: Any, bucket: str, key: str) -> Iterator[None]:
    """``If-None-Match: *`` on the requests that create ``s3://bucket/key`` (PutObject and
    CompleteMultipartUpload) while in the block. s3transfer does not pass the header on, and
    the client is shared, so the hook adds it to this key's requests only."""

    def add_header(params: dict[str, Any], **_: Any) -> None:
        if params.get("Bucket") == bucket and params.get("Key") == key:
            params["IfNoneMatch"] = "*"

    events = client.meta.events
    hooks = [
        f"before-parameter-build.s3.{name}" for name in ("PutObject", "CompleteMultipartUpload")
    ]
    unique = f"brenda-if-none-match-{id(add_header)}"
    for hook in hooks:
        events.register(hook, add_header, unique_id=unique)
    try:
        yield
    finally:
        for hook in hooks:
            events.unregister(hook, unique_id=unique)


def download_file(
    client: Any,
    bucket: str,
    key: str,
    path: Path,
    progress: Progress | None = None,
    *,
    concurrency: int = 10,
    threshold: int = MULTIPART_THRESHOLD,
    size: int | None = None,
) -> None:
    """Download ``s3://bucket/key`` to ``path``, which appears only once complete."""
    progress = progress or Progress()
    progress.start(f"Downloading {Path(key).name}", size)

    def submit(manager: Any, subscribers: list[Any]) -> Any:
        return manager.download(bucket, key, str(path), subscribers=subscribers)

    _transfer(client, progress, submit, concurrency=concurrency, threshold=threshold)


MISSING = ("404", "NoSuchKey", "NotFound")


def _unless_missing(call: Any, **arguments: Any) -> Any:
    """``call(**arguments)``, or None where the object does not exist."""
    try:
        return call(**arguments)
    except Exception as error:
        if error_code(error) in MISSING:
            return None
        raise


def head(client: Any, bucket: str, key: str) -> ObjectInfo | None:
    """The object's size and ETag, or None if it does not exist."""
    response = _unless_missing(client.head_object, Bucket=bucket, Key=key)
    if response is None:
        return None
    return ObjectInfo(
        key=key,
        size=int(response["ContentLength"]),
        etag=str(response["ETag"]).strip('"'),
        modified=response["LastModified"],
        metadata=dict(response.get("Metadata", {})),
    )


COPY_LIMIT = 5 << 30
"""The biggest object one copy request copies."""


def touch(client: Any, bucket: str, key: str, metadata: dict[str, str]) -> ObjectInfo | None:
    """The object copied onto itself with ``metadata``, so that its modification time is now;
    None if it is gone."""
    copied = _unless_missing(
        client.copy_object,
        Bucket=bucket,
        Key=key,
        CopySource={"Bucket": bucket, "Key": key},
        MetadataDirective="REPLACE",
        Metadata=metadata,
    )
    return None if copied is None else head(client, bucket, key)


def write_text(client: Any, bucket: str, key: str, text: str) -> None:
    client.put_object(
        Bucket=bucket, Key=key, Body=text.encode("utf-8"), ContentType="text/plain; charset=utf-8"
    )


def write_new_text(
    client: Any, bucket: str, key: str, text: str, content_type: str = "text/plain; charset=utf-8"
) -> bool:
    """Write ``text`` at ``key`` unless an object is there already (an S3 conditional write,
    ``If-None-Match: *``): of writers racing for one key, exactly one is told True."""
    try:
        client.put_object(
            Bucket=bucket,
            Key=key,
            Body=text.encode("utf-8"),
            ContentType=content_type,
            IfNoneMatch="*",
        )
    except Exception as error:
        # 409 ConditionalRequestConflict: a write to the key was in flight; it wins.
        if error_code(error) in ("PreconditionFailed", "ConditionalRequestConflict"):
            return False
        raise
    return True


def read_text(client: Any, bucket: str, key: str) -> str | None:
    """The object's text, or None if it does not exist."""
    response = _unless_missing(client.get_object, Bucket=bucket, Key=key)
    if response is None:
        return None
    return str(response["Body"].read().decode("utf-8"))


def list_objects(client: Any, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
    """Every object under ``prefix``, in key order."""
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield ObjectInfo(
                key=item["Key"],
                size=int(item["Size"]),
                etag=str(item["ETag"]).strip('"'),
                modified=item["LastModified"],
            )


def objects_if_bucket(client: Any, bucket: str, prefix: str = "") -> list[ObjectInfo]:
    """Every object under ``prefix``, in key order; none where the bucket is not made yet."""
    try:
        return list(list_objects(client, bucket, prefix))
    except Exception as error:
        if error_code(error) == "NoSuchBucket":
            return []
        raise


def any_object(client: Any, bucket: str, prefix: str) -> bool:
    """Whether any object lies under ``prefix`` (one request; none where there is no bucket)."""
    try:
        listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except Exception as error:
        if error_code(error) == "NoSuchBucket":
            return False
        raise
    return bool(listed.get("Contents"))


def ensure_bucket(client: Any, bucket: str, region: str) -> None:
    """Create a private bucket if it does not exist yet (public access blocked). A bucket that
    cannot be used or made is a CloudError that says what to do."""
    try:
        client.head_bucket(Bucket=bucket)
        return
    except Exception as error:
        if error_code(error) in ("403", "AccessDenied"):
            raise CloudError(
                f"These AWS credentials may not use the bucket s3://{bucket}: if another AWS "
                "account owns it (bucket names are shared by all of AWS), name another one; "
                "else let them use it (s3:ListBucket) and make it (s3:CreateBucket)."
            ) from error
        if error_code(error) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    arguments: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        arguments["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**arguments)
    except Exception as error:
        if error_code(error) == "BucketAlreadyExists":
            raise CloudError(
                f"The bucket name {bucket} is taken by another AWS account (bucket names are "
                "shared by all of AWS): name another one."
            ) from error
        if error_code(error) in ("403", "AccessDenied"):
            raise CloudError(
                f"The bucket s3://{bucket} does not exist, and these AWS credentials may not "
                "make it: make it yourself (private, with public access blocked), or let "
                "them (s3:CreateBucket)."
            ) from error
        raise
    client.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )


def read_start(client: Any, bucket: str, key: str, size: int) -> bytes | None:
    """The object's first ``size`` bytes (a ranged GET), or None if it does not exist."""
    response = _unless_missing(
        client.get_object, Bucket=bucket, Key=key, Range=f"bytes=0-{max(size, 1) - 1}"
    )
    return None if response is None else bytes(response["Body"].read())


def open_body(client: Any, bucket: str, key: str) -> Any:
    """The object's bytes as a stream read while it downloads, or None if it does not exist."""
    response = _unless_missing(client.get_object, Bucket=bucket, Key=key)
    return None if response is None else response["Body"]
