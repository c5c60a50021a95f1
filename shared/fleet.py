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
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .aws import ec2, iam
from .aws.session import cloud_errors, make_client, make_session, region_for
from .config import Config
from .errors import BrendaError, ConfigError
from .urls import SqsUrl

log = logging.getLogger(__name__)

NODE_ENV_FILE = "/etc/brenda/node.env"
NODE_WORK_DIR = "/var/lib/brenda"
NODE_SHUTDOWN = "sudo -n /usr/sbin/shutdown -h now"
FORWARDED = (
    "WORK_QUEUE",
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
)
REQUIRED = ("WORK_QUEUE", "BLENDER_PROJECT", "RENDER_OUTPUT")
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
    for key in REQUIRED:
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
        raise ConfigError(f"The number of nodes (-N) must be 1 or more, not {count}.")
    image = image or config.text("AMI_ID")
    if not image or image == "*":
        raise ConfigError(
            "No node image: give -a AMI or set AMI_ID (build one with deploy/build-node-image.sh)."
        )
    bid = config.number("BID_PRICE")
    if price is not None:
        try:
            bid = float(price)
        except ValueError:
            raise ConfigError(f"Price -p {price} is not a number of US$ per hour.") from None
        if not bid > 0:
            raise ConfigError(f"Price -p {price} must be above 0.")
    if persistent and not spot:
        raise ConfigError("-P (persistent) applies to spot nodes only.")
    farm = str(config.text("FARM"))
    return LaunchPlan(
        farm=farm,
        spot=spot,
        count=count,
        instance_type=instance_type or str(config.text("INSTANCE_TYPE")),
        image=image,
        price=bid if spot else None,
        persistent=persistent,
        placement=placement,
        key_name=str(config.text("SSH_KEY_NAME")),
        security_group=str(config.text("SECURITY_GROUP")),
        profile=iam.role_name(farm),
        user_data=user_data(config),
    )


def ec2_client(config: Config) -> Any:
    with cloud_errors("connecting to EC2"):
        return make_client("ec2", config)


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
    client = ec2_client(config)
    with cloud_errors(f"launching {plan.count} {plan.instance_type} nodes"):
        if not iam.profile_exists(make_client("iam", config), plan.profile):
            raise BrendaError(
                f"The nodes' instance profile {plan.profile} does not exist: run "
                "'brenda-run init' first."
            )
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
    client = ec2_client(config)
    farm = str(config.text("FARM"))
    with cloud_errors(f"listing the nodes of farm {farm}"):
        return ec2.instances(client, farm), ec2.spot_requests(client, farm)


def stop(config: Config, *, terminate: bool, dry_run: bool) -> list[str]:
    """Terminate (or stop) the farm's instances, cancelling their spot requests first."""
    client = ec2_client(config)
    farm = str(config.text("FARM"))
    with cloud_errors(f"listing the nodes of farm {farm}"):
        nodes = [node for node in ec2.instances(client, farm) if node.state != "stopped"]
    if not dry_run:
        shut_down(config, nodes, terminate=terminate, client=client)
    return [node.id for node in nodes]


def shut_down(
    config: Config, nodes: list[ec2.Instance], *, terminate: bool, client: Any = None
) -> None:
    """Terminate ``nodes`` (their spot requests cancelled first), or stop on-demand ones."""
    if not nodes:
        return
    client = client or ec2_client(config)
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
    client = ec2_client(config)
    farm = str(config.text("FARM"))
    with cloud_errors(f"cancelling the spot requests of farm {farm}"):
        ids = [
            request.id
            for request in ec2.spot_requests(client, farm)
            if request.state in ec2.OPEN_REQUEST_STATES
        ]
        if ids and not dry_run:
            client.cancel_spot_instance_requests(SpotInstanceRequestIds=ids)
    return ids


def spot_prices(config: Config, instance_type: str) -> dict[str, tuple[float, Any]]:
    client = ec2_client(config)
    with cloud_errors(f"reading spot prices of {instance_type}"):
        return ec2.latest_spot_prices(client, instance_type)


def caller_cidr(config: Config) -> str:
    """The address range admitted to SSH: SSH_FROM, else this machine's address as a /32."""
    configured = config.text("SSH_FROM")
    text = configured
    if text is None:
        url = str(config.text("CHECKIP_URL"))
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                text = response.read().decode().strip() + "/32"
        except OSError as error:
            raise BrendaError(
                f"Could not learn this machine's public address from {url}: set SSH_FROM to "
                "the address range that may reach the nodes by SSH, like 203.0.113.7/32."
            ) from error
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ConfigError(
            f"SSH_FROM '{text}' is not an address range like 203.0.113.7/32."
        ) from None
    if network.prefixlen == 0:
        raise ConfigError("SSH_FROM must not admit the whole Internet; give your own address.")
    return str(network)


@dataclass(frozen=True)
class InitResult:
    key: str
    security_group: str
    ssh_from: str
    profile: str


def init(config: Config, *, key_pair: bool = True, security_group: bool = True) -> InitResult:
    """One-time set-up: key pair, security group (SSH from the caller only), node role."""
    client = ec2_client(config)
    farm = str(config.text("FARM"))
    key_name = str(config.text("SSH_KEY_NAME"))
    group_name = str(config.text("SECURITY_GROUP"))
    key_note = "skipped"
    if key_pair:
        key_note = _ensure_key_pair(client, config, key_name)
    group_note = "skipped"
    cidr = caller_cidr(config) if security_group else "-"
    if security_group:
        with cloud_errors(f"creating the security group {group_name}"):
            group = ec2.find_security_group(client, group_name)
            if group is None:
                group = client.create_security_group(
                    GroupName=group_name,
                    Description=f"Brenda render farm {farm}: SSH from its owner only",
                    TagSpecifications=ec2.farm_tags(farm, "security-group"),
                )["GroupId"]
            _admit_ssh(client, str(group), cidr)
        group_note = str(group)
    with cloud_errors("creating the nodes' IAM role"):
        profile = iam.ensure_node_profile(
            make_client("iam", config), farm, iam.node_policy(**_policy_inputs(config, farm))
        )
    return InitResult(key=key_note, security_group=group_note, ssh_from=cidr, profile=profile)


def _policy_inputs(config: Config, farm: str) -> dict[str, Any]:
    queue = config.require_url("WORK_QUEUE", SqsUrl)
    session = make_session(config)
    region = region_for("sqs", config, session)
    with cloud_errors("looking up this AWS account"):
        account = make_client("sts", config).get_caller_identity()["Account"]
    arns = [
        f"arn:aws:sqs:{region}:{account}:{queue.queue}",
        f"arn:aws:sqs:{region}:{account}:{queue.queue}-dead",
    ]
    return {
        "farm": farm,
        "queue_arns": arns,
        "project": config.get("BLENDER_PROJECT"),
        "output": config.get("RENDER_OUTPUT"),
    }


def _admit_ssh(client: Any, group: str, cidr: str) -> None:
    permissions = client.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
    for rule in permissions.get("IpPermissions", []):
        if rule.get("FromPort") == 22 and any(
            item.get("CidrIp") == cidr for item in rule.get("IpRanges", [])
        ):
            return
    client.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": cidr, "Description": "brenda-run init"}],
            }
        ],
    )


def private_key_path() -> Path:
    return Path("~/.ssh/id_rsa.brenda").expanduser()


def _ensure_key_pair(client: Any, config: Config, name: str) -> str:
    public = Path(str(config.text("SSH_PUBKEY"))).expanduser()
    with cloud_errors(f"creating the key pair {name}"):
        if ec2.key_pair_exists(client, name):
            return f"{name} (exists)"
        if public.is_file() and not private_key_path().exists():
            client.import_key_pair(KeyName=name, PublicKeyMaterial=public.read_bytes())
            return f"{name} (imported from {public})"
        material = client.create_key_pair(KeyName=name)["KeyMaterial"]
    target = private_key_path()
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    target.touch(mode=0o600)
    target.chmod(0o600)
    target.write_text(material, encoding="utf-8")
    return f"{name} (new; private key saved to {target})"
