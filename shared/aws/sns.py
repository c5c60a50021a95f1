# SPDX-License-Identifier: GPL-3.0-or-later
"""Publishing to an SNS topic (a job's notifications). No bpy module use."""

from __future__ import annotations

from ..core.config import Config
from .session import cloud_errors, make_client


def publish(config: Config, topic_arn: str, *, subject: str, message: str) -> None:
    """Publish ``message`` to the topic, in the topic's own region (its ARN's fourth field)."""
    region = topic_arn.split(":")[3]
    with cloud_errors(f"publishing to SNS topic {topic_arn}"):
        client = make_client("sns", config, region=region)
        client.publish(TopicArn=topic_arn, Subject=subject[:100], Message=message)
