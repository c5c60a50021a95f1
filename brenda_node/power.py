# SPDX-License-Identifier: GPL-3.0-or-later
"""Powering the node off when its work is done (``DONE=shutdown``). No bpy module use."""

from __future__ import annotations

import logging
import shlex
import subprocess

from shared.aws import ec2
from shared.aws.session import cloud_errors, make_client
from shared.core.config import Config
from shared.core.errors import BrendaError, CloudError

from .spot import MetadataClient

log = logging.getLogger(__name__)


def cancel_own_spot_request(config: Config) -> None:
    """Cancel the spot request that launched this node, so that a persistent request does not
    start another node once this one powers off (the original did this too)."""

    try:
        instance = MetadataClient(config.text("METADATA_URL")).get("/latest/meta-data/instance-id")
        if instance is None:
            return
        with cloud_errors("cancelling this node's spot request"):
            client = make_client("ec2", config)
            request = ec2.spot_request_of(client, instance.strip())
            if request is not None:
                client.cancel_spot_instance_requests(SpotInstanceRequestIds=[request])
                log.warning("cancelled this node's spot request %s", request)
    except (OSError, CloudError) as error:
        log.warning("could not cancel this node's spot request: %s", error)


def shut_down(config: Config) -> None:
    """Power the machine off (DONE=shutdown), cancelling its own spot request first."""
    if config.flag("RUNNING_ON_EC2"):
        cancel_own_spot_request(config)
    command = shlex.split(config.text("SHUTDOWN_COMMAND"))
    log.warning("shutting down: %s", " ".join(command))
    try:
        subprocess.run(command, check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        raise BrendaError(f"The shutdown command {command[0]} failed: {error}.") from error
