# SPDX-License-Identifier: GPL-3.0-or-later
"""The render fleet behind ``brenda-run`` and the add-on: launch, list, stop. No bpy module use.

Nodes boot from an image made by ``deploy/build-node-image.sh``; their user data writes the node's
settings to ``/etc/brenda/node.env`` and starts the ``brenda-node`` service. User data never holds
AWS keys (nodes use the farm's instance profile) and is written with a quoted here-document, so
nothing in it is expanded at boot. Everything launched is tagged with the farm's name, and
``status``, ``stop`` and ``cancel`` touch that farm's resources only.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import os
import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..aws import ec2, iam
from ..aws.session import cloud_errors, make_client, make_session, region_for
from ..core.config import Config, node_required
from ..core.errors import BrendaError, ConfigError, UsageError
from ..core.http import http_session
from ..core.urls import EbsUrl, S3Url
from ..jobs.costs import ON_DEMAND_PRICES
from ..jobs.registry import RECORDS, farm_topics, queue_name
from ..outputs.store import (
    EVENTS,
    FAILURES,
    LEDGERS,
    REPORT_SUFFIX,
    VIDEO_CLAIM,
    VIDEO_SUFFIX,
)
from ..tasks.task import FRAME_EXTENSIONS
from .image import latest_image
from .quotas import fit_spot_quota
from .releases import releases_url

log = logging.getLogger(__name__)

OUTPUT_LAYOUT = iam.OutputLayout(
    frame_suffixes=tuple(sorted(set(FRAME_EXTENSIONS.values()))),
    records=RECORDS,
    failures=FAILURES,
    ledgers=LEDGERS,
    video_suffix=VIDEO_SUFFIX,
    report_suffix=REPORT_SUFFIX,
    video_claim=VIDEO_CLAIM,
    events=EVENTS,
)
NODE_ENV_FILE = "/etc/brenda/node.env"
NODE_WORK_DIR = "/var/lib/brenda"
NODE_SHUTDOWN = "sudo -n /usr/sbin/shutdown -h now"
FORWARDED = (
    "WORK_QUEUE",
    "BLENDERS",
    "BLENDER_RELEASES",
    "BLENDER_PROJECT",
    "RENDER_OUTPUT",
    "S3_REGION",
    "SQS_REGION",
    "EC2_REGION",
    "VISIBILITY_TIMEOUT",
    "VISIBILITY_TIMEOUT_REASSERT",
    "N_RETRIES",
    "ERROR_PAUSE",
    "RESET_PERIOD",
    "CURL_MAX_THREADS",
    "BLENDER_PROJECT_ALWAYS_REFETCH",
    "BLENDER",
    "RECEIVE_WAIT",
    "POLL_PAUSE",
    "FARM",
    "FARM_PROJECTS",
    "FARM_OUTPUTS",
    "TASK_TIMEOUT",
    "TASK_SILENCE",
)
ENV_END = "BRENDA_NODE_ENV_END"


def _raw(config: Config, key: str) -> str | None:
    value = config.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _env_line(key: str, value: str) -> str:
    if any(character in value for character in "\n\r\0"):
        raise ConfigError(f"{key} holds a line break, which a node's settings cannot carry.")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{key}="{escaped}"'


def node_environment(config: Config) -> list[str]:
    """The lines of a node's ``node.env``: Brenda settings and the region, never keys."""
    for key in node_required(config):
        if config.get(key) is None:
            raise config.missing(key)
    session = make_session(config)
    region = region_for("ec2", config, session)
    lines = [_env_line("AWS_DEFAULT_REGION", region), _env_line("BRENDA_EC2_REGION", region)]
    for key in FORWARDED:
        value = _raw(config, key)
        if value is not None and key != "EC2_REGION":
            lines.append(_env_line(f"BRENDA_{key}", value))
    for index, url in enumerate(config.additional_ebs()):
        lines.append(_env_line(f"BRENDA_ADDITIONAL_EBS_{index}", str(url)))
    work_dir = _raw(config, "WORK_DIR") if "WORK_DIR" in config.values else NODE_WORK_DIR
    lines += [
        _env_line("BRENDA_WORK_DIR", str(work_dir)),
        _env_line("BRENDA_DONE", config.done_mode()),
        _env_line("BRENDA_RUNNING_ON_EC2", "1"),
        _env_line("BRENDA_SHUTDOWN_COMMAND", NODE_SHUTDOWN),
    ]
    return lines


def user_data(config: Config) -> str:
    """The boot script of a node: write its settings, start the service."""
    settings = "\n".join(node_environment(config))
    return (
        "#!/bin/bash\n"
        "# Brenda node boot: settings for the brenda-node service, then start it.\n"
        "set -euo pipefail\n"
        "install -d -m 0755 /etc/brenda\n"
        "umask 077\n"
        f"cat > {NODE_ENV_FILE} <<'{ENV_END}'\n"
        f"{settings}\n"
        f"{ENV_END}\n"
        "systemctl enable --now brenda-node.service\n"
    )


@dataclass(frozen=True)
class LaunchPlan:
    farm: str
    spot: bool
    count: int
    instance_type: str
    image: str
    price: float | None
    persistent: bool
    placement: str | None
    """An availability zone (us-east-1a) or a subnet id (subnet-...)."""
    key_name: str
    security_group: str
    profile: str
    user_data: str

    def summary(self) -> list[str]:
        lines = [
            f"Farm                 {self.farm}",
            f"Market               {'spot' if self.spot else 'on-demand'}",
            f"Image (AMI)          {self.image}",
            f"Instance type        {self.instance_type}",
            f"Instance count       {self.count}",
        ]
        if self.spot:
            price = f"US$ {self.price}/hour" if self.price else "on-demand price (AWS default)"
            lines += [
                f"Max price            {price}",
                f"Request type         {'persistent' if self.persistent else 'one-time'}",
            ]
        lines += [
            f"Placement            {self.placement or 'chosen by EC2'}",
            f"SSH key pair         {self.key_name}",
            f"Security group       {self.security_group}",
            f"Instance profile     {self.profile}",
        ]
        return lines


def plan_launch(
    config: Config,
    *,
    spot: bool,
    count: int,
    instance_type: str | None,
    image: str | None,
    price: str | None,
    persistent: bool,
    placement: str | None,
) -> LaunchPlan:
    if count < 1:
        raise UsageError(f"The number of nodes (-N) must be 1 or more, not {count}.")
    image = node_image(config, image)
    bid = config.optional_number("BID_PRICE")
    if price is not None:
        try:
            bid = float(price)
        except ValueError:
            raise UsageError(f"Price -p {price} is not a number of US$ per hour.") from None
        if not bid > 0:
            raise UsageError(f"Price -p {price} must be above 0.")
    if persistent and not spot:
        raise UsageError("-P (persistent) applies to spot nodes only.")
    farm = config.text("FARM")
    return LaunchPlan(
        farm=farm,
        spot=spot,
        count=count,
        instance_type=instance_type or config.text("INSTANCE_TYPE"),
        image=image,
        price=bid if spot else None,
        persistent=persistent,
        placement=placement,
        key_name=config.text("SSH_KEY_NAME"),
        security_group=config.text("SECURITY_GROUP"),
        profile=iam.role_name(farm),
        user_data=user_data(config),
    )


def fit_quota(config: Config, plan: LaunchPlan) -> tuple[LaunchPlan, tuple[str, ...]]:
    """The plan with its spot nodes cut to what the account's spot vCPU quota leaves room for,
    and what to say about it; raises when not one fits. On-demand plans are left as they are."""
    if not plan.spot:
        return plan, ()
    fit = fit_spot_quota(config, [plan.instance_type], plan.count)
    return replace(plan, count=fit.nodes), fit.notes


def node_image(config: Config, image: str | None) -> str:
    """The nodes' image: ``image`` (-a), else AMI_ID; ``latest``: the farm's newest image."""
    chosen = image or config.optional_text("AMI_ID")
    if not chosen or chosen == "*":
        raise ConfigError(
            "No node image: give -a AMI or set AMI_ID (make one with 'brenda-run image')."
        )
    if chosen == "latest":
        return latest_image(config)
    return chosen


def require_profile(config: Config, profile: str) -> None:
    """Refuse to launch nodes whose instance profile ``init`` has not made."""
    if not iam.profile_exists(make_client("iam", config), profile):
        raise BrendaError(
            f"The nodes' instance profile {profile} does not exist: run 'brenda-run init' first."
        )


def security_group_id(client: Any, name: str) -> str:
    group = ec2.find_security_group(client, name)
    if group is None:
        raise BrendaError(f"Security group '{name}' does not exist: run 'brenda-run init' first.")
    return group


def _network(client: Any, plan: LaunchPlan) -> dict[str, Any]:
    group = security_group_id(client, plan.security_group)
    if plan.placement and plan.placement.startswith("subnet-"):
        return {"SubnetId": plan.placement, "SecurityGroupIds": [group]}
    network: dict[str, Any] = {"SecurityGroupIds": [group]}
    if plan.placement:
        network["Placement"] = {"AvailabilityZone": plan.placement}
    return network


def launch(config: Config, plan: LaunchPlan) -> list[str]:
    """Start the nodes; returns instance ids, or spot request ids for persistent requests."""
    client = ec2.connect(config)
    with cloud_errors(f"launching {plan.count} {plan.instance_type} nodes"):
        require_profile(config, plan.profile)
        network = _network(client, plan)
        common: dict[str, Any] = {
            "ImageId": plan.image,
            "InstanceType": plan.instance_type,
            "KeyName": plan.key_name,
            "UserData": plan.user_data,
            "IamInstanceProfile": {"Name": plan.profile},
        }
        if plan.persistent:
            # Unlike RunInstances, boto3 does not encode user data for spot requests.
            encoded = base64.b64encode(plan.user_data.encode()).decode()
            specification = {**common, **network, "UserData": encoded}
            placement = specification.pop("Placement", None)
            if placement:
                specification["Placement"] = placement
            arguments: dict[str, Any] = {
                "InstanceCount": plan.count,
                "Type": "persistent",
                "LaunchSpecification": specification,
                "TagSpecifications": ec2.farm_tags(plan.farm, "spot-instances-request"),
            }
            if plan.price:
                arguments["SpotPrice"] = str(plan.price)
            response = client.request_spot_instances(**arguments)
            return [item["SpotInstanceRequestId"] for item in response["SpotInstanceRequests"]]
        arguments = {
            **common,
            **network,
            "MinCount": plan.count,
            "MaxCount": plan.count,
            "TagSpecifications": ec2.farm_tags(plan.farm, "instance"),
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
            "InstanceInitiatedShutdownBehavior": "terminate",
        }
        if plan.spot:
            options: dict[str, Any] = {"SpotInstanceType": "one-time"}
            if plan.price:
                options["MaxPrice"] = str(plan.price)
            arguments["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": options}
        response = client.run_instances(**arguments)
        return [item["InstanceId"] for item in response["Instances"]]


def farm_state(config: Config) -> tuple[list[ec2.Instance], list[ec2.SpotRequest]]:
    client = ec2.connect(config)
    farm = config.text("FARM")
    with cloud_errors(f"listing the nodes of farm {farm}"):
        return ec2.instances(client, farm), ec2.spot_requests(client, farm)


def stop(
    config: Config, *, terminate: bool, dry_run: bool, draining: Collection[str] = ()
) -> list[str]:
    """Terminate (or stop) the farm's instances, cancelling their spot requests first; nodes
    ``draining`` (of its stopped fleet) are left to finish their task unless ``terminate``."""
    client = ec2.connect(config)
    farm = config.text("FARM")
    with cloud_errors(f"listing the nodes of farm {farm}"):
        nodes = [
            node
            for node in ec2.instances(client, farm)
            if node.state != "stopped" and (terminate or node.id not in draining)
        ]
    if not dry_run:
        shut_down(config, nodes, terminate=terminate, client=client)
    return [node.id for node in nodes]


def shut_down(
    config: Config, nodes: list[ec2.Instance], *, terminate: bool, client: Any = None
) -> None:
    """Terminate ``nodes`` (their spot requests cancelled first), or stop on-demand ones."""
    if not nodes:
        return
    client = client or ec2.connect(config)
    ids = [node.id for node in nodes]
    with cloud_errors(f"shutting down {', '.join(ids)}"):
        if not terminate:
            spot = [node.id for node in nodes if node.spot]
            if spot:
                raise BrendaError(
                    f"Spot nodes cannot be stopped, only terminated ({', '.join(spot)}): use -T."
                )
            client.stop_instances(InstanceIds=ids)
            return
        requests = sorted({node.spot_request for node in nodes if node.spot_request})
        if requests:
            client.cancel_spot_instance_requests(SpotInstanceRequestIds=requests)
        client.terminate_instances(InstanceIds=ids)


def cancel(config: Config, *, dry_run: bool) -> list[str]:
    """Cancel the farm's open spot requests (running nodes keep running)."""
    client = ec2.connect(config)
    farm = config.text("FARM")
    with cloud_errors(f"cancelling the spot requests of farm {farm}"):
        ids = [
            request.id
            for request in ec2.spot_requests(client, farm)
            if request.state in ec2.OPEN_REQUEST_STATES
        ]
        if ids and not dry_run:
            client.cancel_spot_instance_requests(SpotInstanceRequestIds=ids)
    return ids


GPU_INSTANCE_TYPES = (
    "g4dn.xlarge",
    "g4dn.2xlarge",
    "g5.xlarge",
    "g5.2xlarge",
    "g6.xlarge",
    "g6.2xlarge",
)
"""NVIDIA GPU types for jobs rendering on CUDA or OPTIX (T4, A10G, L4), smallest first."""


@dataclass(frozen=True)
class TypePrice:
    instance_type: str
    spot: float | None
    """The cheapest zone's spot price now, US$ per hour; None where AWS has none."""
    zone: str | None
    on_demand: float | None


def gpu_prices(config: Config) -> list[TypePrice]:
    """What each GPU type costs now: its cheapest spot zone, and its on-demand list price."""

    found = []
    for instance_type in GPU_INSTANCE_TYPES:
        cheapest = cheapest_spot_price(config, instance_type)
        found.append(
            TypePrice(
                instance_type,
                cheapest[0] if cheapest else None,
                cheapest[1] if cheapest else None,
                ON_DEMAND_PRICES.get(instance_type),
            )
        )
    return found


def cheapest_spot_price(config: Config, instance_type: str) -> tuple[float, str] | None:
    """The type's lowest spot price now, US$ per hour, and its zone; None if none is known."""
    prices = spot_prices(config, instance_type)
    zone = min(prices, key=lambda name: prices[name][0], default=None)
    return None if zone is None else (prices[zone][0], zone)


def spot_prices(config: Config, instance_type: str) -> dict[str, tuple[float, Any]]:
    client = ec2.connect(config)
    with cloud_errors(f"reading spot prices of {instance_type}"):
        return ec2.latest_spot_prices(client, instance_type)


NARROWEST_WIDE_PREFIX = {4: 24, 6: 56}
"""SSH_FROM ranges wider than these (more addresses) need SSH_FROM_WIDE=1."""
SSH_RULE_DESCRIPTION = "brenda-run init"


def caller_cidr(config: Config) -> str:
    """The address range admitted to SSH: SSH_FROM, else this machine's address (/32 or /128)."""
    text = config.optional_text("SSH_FROM")
    if text is None:
        url = config.text("CHECKIP_URL")
        try:
            response = http_session().get(url, timeout=(5, 10))
            response.raise_for_status()
            address = ipaddress.ip_address(response.text.strip())
        except (OSError, ValueError) as error:
            raise BrendaError(
                f"Could not learn this machine's public address from {url}: set SSH_FROM to "
                "the address range that may reach the nodes by SSH, like 203.0.113.7/32."
            ) from error
        text = f"{address}/{address.max_prefixlen}"
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ConfigError(
            f"SSH_FROM '{text}' is not an address range like 203.0.113.7/32."
        ) from None
    if network.prefixlen == 0:
        raise ConfigError("SSH_FROM must not admit the whole Internet; give your own address.")
    narrowest = NARROWEST_WIDE_PREFIX[network.version]
    if network.prefixlen < narrowest and not config.flag("SSH_FROM_WIDE"):
        raise ConfigError(
            f"SSH_FROM {text} admits {network.num_addresses:,} addresses; give a range of /"
            f"{narrowest} or narrower (your own address), or set SSH_FROM_WIDE=1 if you mean it."
        )
    return str(network)


@dataclass(frozen=True)
class InitResult:
    key: str
    security_group: str
    ssh_from: str
    profile: str
    grants: list[str]
    """What the nodes' role lets a node do, one sentence each: its queues first."""


def init(config: Config, *, key_pair: bool = True, security_group: bool = True) -> InitResult:
    """One-time set-up: key pair, security group (SSH from the caller only), node role.

    Every setting is checked before anything is made.
    """
    farm = config.text("FARM")
    key_name = config.text("SSH_KEY_NAME")
    group_name = config.text("SECURITY_GROUP")
    requested = farm_grants(config)
    queue_arns = _queue_arns(config)
    cidr = caller_cidr(config) if security_group else "-"
    if key_pair:
        private_key_path(key_name)
    client = ec2.connect(config)
    key_note = "skipped"
    if key_pair:
        key_note = _ensure_key_pair(client, config, key_name)
    group_note = "skipped"
    if security_group:
        with cloud_errors(f"creating the security group {group_name}"):
            group = ec2.find_security_group(client, group_name)
            if group is None:
                group = client.create_security_group(
                    GroupName=group_name,
                    Description=f"Brenda render farm {farm}: SSH from its owner only",
                    TagSpecifications=ec2.farm_tags(farm, "security-group"),
                )["GroupId"]
            replaced = _admit_ssh(client, str(group), cidr)
        group_note = str(group) + (f", replacing {', '.join(replaced)}" if replaced else "")
    profile, grants = _ensure_node_role(config, farm, requested, queue_arns)
    return InitResult(
        key=key_note,
        security_group=group_note,
        ssh_from=cidr,
        profile=profile,
        grants=[*queue_grants(config), *grants.lines()],
    )


def queue_grants(config: Config) -> list[str]:
    """The queues the node role lets a node take tasks from (those ``_queue_arns`` names), one
    sentence each: the farm's WORK_QUEUE if set, and every job's queue of the farm."""
    every_job = f"sqs://{queue_name(config.text('FARM'), '*')}"
    sentences = [f"take, renew and delete tasks of every job's queue ({every_job})"]
    queue = config.work_queue()
    if queue is not None:
        sentences.insert(0, f"take, renew and delete tasks of {queue} and its dead-letter queue")
    return sentences


def _folder(url: S3Url) -> S3Url:
    """The "folder" holding ``url``: where the farm's other projects or outputs sit beside it."""
    parent = url.prefix.rstrip("/").rpartition("/")[0]
    return S3Url(url.bucket, f"{parent}/" if parent else "")


def farm_grants(config: Config) -> iam.FarmGrants:
    """What the farm's nodes need: its project and output prefixes, and volumes if it uses EBS.

    ``FARM_PROJECTS`` and ``FARM_OUTPUTS`` name the prefixes; unset, they are the folders
    holding ``BLENDER_PROJECT`` and ``RENDER_OUTPUT`` (every job of the farm sits beside them).
    """
    project = config.get("BLENDER_PROJECT")
    projects = config.optional_url("FARM_PROJECTS", S3Url)
    if projects is None and isinstance(project, S3Url):
        projects = _folder(project)
    outputs = config.optional_url("FARM_OUTPUTS", S3Url)
    if outputs is None and isinstance(config.get("RENDER_OUTPUT"), S3Url):
        outputs = _folder(config.url("RENDER_OUTPUT", S3Url))
    volumes = isinstance(project, EbsUrl) or bool(config.additional_ebs())
    if outputs is None:
        raise ConfigError(
            "The nodes' role needs the farm's S3 output prefix: set FARM_OUTPUTS (or "
            "RENDER_OUTPUT) to an s3:// address before 'brenda-run init'."
        )
    if projects is None and not isinstance(project, EbsUrl):
        raise ConfigError(
            "The nodes' role needs the farm's S3 project prefix: set FARM_PROJECTS (or "
            "BLENDER_PROJECT) to an s3:// or ebs:// address before 'brenda-run init'."
        )
    releases = releases_url(config)
    return iam.FarmGrants(
        projects=(projects,) if projects else (),
        outputs=(outputs,) if config.serves_jobs else (),
        queue_outputs=() if config.serves_jobs else (outputs,),
        volumes=volumes,
        releases=(releases,) if releases else (),
    )


def _queue_arns(config: Config) -> list[str]:
    """The farm's WORK_QUEUE (if set) and every job queue of the farm, with their dead letters."""
    queue = config.work_queue()
    session = make_session(config)
    region = region_for("sqs", config, session)
    with cloud_errors("looking up this AWS account"):
        account = make_client("sts", config).get_caller_identity()["Account"]
    names = [queue.queue, f"{queue.queue}-dead"] if queue is not None else []
    names.append(queue_name(config.text("FARM"), "*"))
    return [f"arn:aws:sqs:{region}:{account}:{name}" for name in names]


def _ensure_node_role(
    config: Config, farm: str, requested: iam.FarmGrants, queue_arns: list[str]
) -> tuple[str, iam.FarmGrants]:
    """Create the node role, or add ``requested`` to what it already grants."""
    with cloud_errors("creating the nodes' IAM role"):
        client = make_client("iam", config)
        current = iam.current_policy(client, farm)
        grants = requested if current is None else iam.grants_of(current).merged(requested)
        policy = iam.node_policy(
            farm=farm,
            queue_arns=queue_arns,
            grants=grants,
            layout=OUTPUT_LAYOUT,
            topics=farm_topics(farm),
        )
        return iam.ensure_node_profile(client, farm, policy), grants


def _ssh_ranges(rule: dict[str, Any]) -> list[str]:
    """The ranges of an ingress rule that ``brenda-run init`` made."""
    ranges = [
        str(item["CidrIp"])
        for item in rule.get("IpRanges", [])
        if item.get("Description") == SSH_RULE_DESCRIPTION
    ]
    ranges += [
        str(item["CidrIpv6"])
        for item in rule.get("Ipv6Ranges", [])
        if item.get("Description") == SSH_RULE_DESCRIPTION
    ]
    return ranges


def _ssh_permission(cidr: str) -> dict[str, Any]:
    permission: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22}
    if ipaddress.ip_network(cidr).version == 6:
        permission["Ipv6Ranges"] = [{"CidrIpv6": cidr, "Description": SSH_RULE_DESCRIPTION}]
    else:
        permission["IpRanges"] = [{"CidrIp": cidr, "Description": SSH_RULE_DESCRIPTION}]
    return permission


def _admit_ssh(client: Any, group: str, cidr: str) -> list[str]:
    """Admit ``cidr`` to SSH and revoke the ranges earlier inits admitted; returns those."""
    described = client.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
    admitted = [
        admitted
        for rule in described.get("IpPermissions", [])
        if rule.get("FromPort") == 22
        for admitted in _ssh_ranges(rule)
    ]
    if cidr not in admitted:
        client.authorize_security_group_ingress(
            GroupId=group, IpPermissions=[_ssh_permission(cidr)]
        )
    stale = [old for old in admitted if old != cidr]
    if stale:
        client.revoke_security_group_ingress(
            GroupId=group, IpPermissions=[_ssh_permission(old) for old in stale]
        )
    return stale


_KEY_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def private_key_path(key_name: str) -> Path:
    """Where ``init`` saves the private key of a key pair it creates: named after the pair."""
    if not _KEY_NAME.match(key_name):
        raise ConfigError(
            f"SSH_KEY_NAME '{key_name}' cannot name a key file: use letters, digits, '.', '_' "
            "and '-'."
        )
    return Path(f"~/.ssh/id_rsa.{key_name}").expanduser()


def _ensure_key_pair(client: Any, config: Config, name: str) -> str:
    public = Path(config.text("SSH_PUBKEY")).expanduser()
    target = private_key_path(name)
    with cloud_errors(f"creating the key pair {name}"):
        if ec2.key_pair_exists(client, name):
            return f"{name} (exists)"
        if public.is_file():
            client.import_key_pair(KeyName=name, PublicKeyMaterial=public.read_bytes())
            return f"{name} (imported from {public})"
        if target.exists():
            raise BrendaError(
                f"{target} already holds a private key, and key pair {name} does not exist: "
                "move the file away or choose another SSH_KEY_NAME (Brenda never overwrites a key)."
            )
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        material = client.create_key_pair(KeyName=name)["KeyMaterial"]
    try:
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(material)
    except OSError as error:
        raise BrendaError(
            f"Key pair {name} was made but its private key could not be saved to {target} "
            f"({error.strerror}); delete the key pair in EC2 and run init again."
        ) from error
    return f"{name} (new; private key saved to {target})"
