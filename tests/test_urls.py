# SPDX-License-Identifier: GPL-3.0-or-later
"""Brenda's URL forms and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.core.errors import ConfigError
from shared.core.urls import EbsUrl, FileUrl, S3Url, SqsUrl, parse_url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("s3://frames", S3Url("frames", "")),
        ("s3://frames/", S3Url("frames", "")),
        ("s3://frames/shot1", S3Url("frames", "shot1/")),
        ("s3://my.frames-2/a/b/", S3Url("my.frames-2", "a/b/")),
        ("sqs://render_queue-1", SqsUrl("render_queue-1")),
        ("file:///projects/shot", FileUrl(Path("/projects/shot"))),
        ("file://relative/dir", FileUrl(Path("relative/dir"))),
        ("ebs://snap-0123abcd", EbsUrl("snap-0123abcd", None)),
        ("ebs://my-project", EbsUrl("my-project", None)),
        ("ebs://snap-1,textures/wood", EbsUrl("snap-1", "textures/wood")),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_valid_urls(text: str, expected: object) -> None:
    assert parse_url(text) == expected


def test_str_gives_the_url_back() -> None:
    for text in ("s3://frames", "s3://frames/shot1/", "sqs://q", "ebs://snap-1,tex"):
        assert str(parse_url(text)) == text
    assert S3Url("b", "p/").key("frame_000001.png") == "p/frame_000001.png"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("frames", "'frames' is not a URL Brenda understands: expected s3:// or sqs://"),
        ("http://x", "'http://x' is not a URL Brenda understands"),
        ("s3://Frames", "does not name a valid S3 bucket"),
        ("s3://ab", "does not name a valid S3 bucket"),
        ("s3://a..b", "does not name a valid S3 bucket"),
        ("sqs://my queue", "does not name a valid SQS queue"),
        ("sqs://" + "q" * 81, "does not name a valid SQS queue"),
        ("file://", "names no path"),
        ("ebs://", "names no snapshot"),
        ("ebs://snap-1,../up", "has a bad mount folder"),
        ("ebs://snap-1,/abs", "has a bad mount folder"),
        ("ebs://snap-1,", "has a bad mount folder"),
    ],
    ids=lambda value: value[:20],
)
def test_bad_urls_are_named(text: str, message: str) -> None:
    allowed = ("s3", "sqs") if text in ("frames", "http://x") else ("s3", "sqs", "file", "ebs")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_url(text, allowed=allowed)


def test_scheme_not_allowed_here() -> None:
    with pytest.raises(ConfigError, match="wrong kind of URL here: expected sqs://"):
        parse_url("s3://bucket", allowed=("sqs",))
