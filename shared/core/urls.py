# SPDX-License-Identifier: GPL-3.0-or-later
"""Brenda's resource URLs: ``s3://``, ``sqs://``, ``file://`` and ``ebs://``. No bpy module use.

``s3://bucket[/prefix]``  an S3 bucket and an optional key prefix (projects, rendered frames)
``sqs://queue``           an SQS queue by name, in the configured region
``file://path``           a folder or archive on the local file system
``ebs://snapshot[,dir]``  an EBS snapshot (id ``snap-...`` or its Name tag), mounted at ``dir``

And where a job's notifications go (``NOTIFY``): ``sns://TOPIC_ARN`` or an ``https://`` webhook
(``http://`` only to this machine itself, for tests).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigError

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_SNAPSHOT = re.compile(r"^[^,\s]{1,255}$")


@dataclass(frozen=True)
class S3Url:
    bucket: str
    prefix: str
    """Key prefix, empty or ending in ``/`` so that ``prefix + name`` is a key."""

    def key(self, name: str) -> str:
        return self.prefix + name

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


@dataclass(frozen=True)
class SqsUrl:
    queue: str

    def __str__(self) -> str:
        return f"sqs://{self.queue}"


@dataclass(frozen=True)
class FileUrl:
    path: Path

    def __str__(self) -> str:
        return f"file://{self.path}"


@dataclass(frozen=True)
class EbsUrl:
    snapshot: str
    directory: str | None
    """Folder relative to the project where the volume is mounted; None for the project itself."""

    def __str__(self) -> str:
        suffix = f",{self.directory}" if self.directory is not None else ""
        return f"ebs://{self.snapshot}{suffix}"


BrendaUrl = S3Url | SqsUrl | FileUrl | EbsUrl

SCHEMES: dict[str, type[BrendaUrl]] = {
    "s3": S3Url,
    "sqs": SqsUrl,
    "file": FileUrl,
    "ebs": EbsUrl,
}


def parse_url(text: str, *, allowed: tuple[str, ...] = tuple(SCHEMES)) -> BrendaUrl:
    """Parse ``text`` into one of Brenda's URL types, accepting only the ``allowed`` schemes.

    Raises ConfigError with a sentence that names the URL and what would be valid.
    """
    scheme, separator, rest = text.partition("://")
    expected = " or ".join(f"{name}://" for name in allowed)
    if not separator or scheme not in SCHEMES:
        raise ConfigError(f"'{text}' is not a URL Brenda understands: expected {expected}.")
    if scheme not in allowed:
        raise ConfigError(f"'{text}' has the wrong kind of URL here: expected {expected}.")
    if scheme == "s3":
        return _parse_s3(text, rest)
    if scheme == "sqs":
        return _parse_sqs(text, rest)
    if scheme == "file":
        return _parse_file(text, rest)
    return _parse_ebs(text, rest)


def _parse_s3(text: str, rest: str) -> S3Url:
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET_NAME.match(bucket) or ".." in bucket:
        raise ConfigError(
            f"'{text}' does not name a valid S3 bucket: bucket names have 3 to 63 lower-case "
            "letters, digits, dots or hyphens."
        )
    prefix = prefix.strip("/")
    return S3Url(bucket=bucket, prefix=f"{prefix}/" if prefix else "")


def _parse_sqs(text: str, rest: str) -> SqsUrl:
    if not _QUEUE_NAME.match(rest):
        raise ConfigError(
            f"'{text}' does not name a valid SQS queue: use sqs://NAME with up to 80 letters, "
            "digits, hyphens or underscores."
        )
    return SqsUrl(queue=rest)


def _parse_file(text: str, rest: str) -> FileUrl:
    if not rest:
        raise ConfigError(f"'{text}' names no path: use file:///absolute/path.")
    return FileUrl(path=Path(rest).expanduser())


def _parse_ebs(text: str, rest: str) -> EbsUrl:
    snapshot, comma, directory = rest.partition(",")
    if not _SNAPSHOT.match(snapshot):
        raise ConfigError(
            f"'{text}' names no snapshot: use ebs://snap-ID or ebs://NAME, optionally "
            "followed by ,FOLDER."
        )
    if comma:
        parts = Path(directory).parts
        if not directory or Path(directory).is_absolute() or ".." in parts:
            raise ConfigError(
                f"'{text}' has a bad mount folder: give a folder inside the project, "
                "like ebs://snap-ID,textures."
            )
        return EbsUrl(snapshot=snapshot, directory=directory)
    return EbsUrl(snapshot=snapshot, directory=None)


TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]{1,32}:[0-9]{12}:([A-Za-z0-9_-]{1,256})\Z")
"""An SNS topic's ARN (a standard topic: FIFO topics need a group id); group 1 is its name."""
MAX_WEBHOOK = 2048


@dataclass(frozen=True)
class NotifyTarget:
    """Where a job's notifications go: an SNS topic (``topic``, its ARN) or a webhook (``url``)."""

    topic: str | None = None
    url: str | None = None

    @property
    def topic_name(self) -> str | None:
        match = TOPIC_ARN.match(self.topic or "")
        return match.group(1) if match else None

    def __str__(self) -> str:
        return f"sns://{self.topic}" if self.topic is not None else str(self.url)


def parse_notify(text: str) -> NotifyTarget:
    """``sns://TOPIC_ARN`` or an ``https://`` URL (``http://`` to this machine only: a webhook
    elsewhere would carry the job's news in clear). ConfigError says why not."""
    if text.startswith("sns://"):
        arn = text.removeprefix("sns://")
        if not TOPIC_ARN.match(arn):
            raise ConfigError(
                f"'{text}' is not sns://TOPIC_ARN, like "
                "sns://arn:aws:sns:us-east-1:123456789012:brenda-FARM-done."
            )
        return NotifyTarget(topic=arn)
    if len(text) > MAX_WEBHOOK or not text.isprintable() or " " in text:
        raise ConfigError(f"'{text[:80]}' is not a webhook URL Brenda sends to.")
    try:
        parts = urlsplit(text)
        host = parts.hostname
        parts.port  # noqa: B018 - a port that is not a number raises ValueError
    except ValueError as error:
        raise ConfigError(f"'{text}' is not a webhook URL: {error}.") from error
    if parts.scheme == "https" and host:
        return NotifyTarget(url=text)
    if parts.scheme == "http" and host and _loopback(host):
        return NotifyTarget(url=text)
    raise ConfigError(
        f"'{text}' is not where Brenda sends notifications: give sns://TOPIC_ARN or an "
        "https:// URL (http:// only to this machine, for tests)."
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
