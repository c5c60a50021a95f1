# SPDX-License-Identifier: GPL-3.0-or-later
"""Brenda's settings: one table, read from ``~/.brenda.conf``, ``BRENDA_*`` and flags.

No bpy module use.

The file format is the original Brenda's: ``KEY=VALUE`` lines; a value wrapped in matching quotes
loses them; single-quoted values are literal, others expand ``$NAME`` and ``${NAME}`` from keys
read earlier in the file, then from the environment. Precedence: command-line flag, then the
environment variable ``BRENDA_<KEY>``, then the file, then the default.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .errors import ConfigError, MissingSetting, UsageError
from .urls import BrendaUrl, EbsUrl, SqsUrl, parse_notify, parse_url

log = logging.getLogger(__name__)

ENV_PREFIX = "BRENDA_"
CONFIG_PATH_ENV = "BRENDA_CONFIG"
DEFAULT_CONFIG_PATH = Path("~/.brenda.conf")

_LINE = re.compile(r"^([A-Za-z0-9_]+)=(.*)$")
_REFERENCE = re.compile(r"\$\{([A-Za-z0-9_]+)\}|\$([A-Za-z0-9_]+)")
_ADDITIONAL_EBS = re.compile(r"^ADDITIONAL_EBS_(\d+)$")
MAX_ADDITIONAL_EBS = 65

Value = str | int | float | bool | BrendaUrl
Parser = Callable[[str], Value]
T = TypeVar("T")


class _BadValueError(ValueError):
    """A parser's complaint, completed into a sentence with the key and its origin."""


@dataclass(frozen=True)
class Setting:
    key: str
    parse: Parser
    default: Value | None
    description: str


def _text(value: str) -> str:
    if not value:
        raise _BadValueError("must not be empty")
    return value


def _count(minimum: int, maximum: int | None = None) -> Parser:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise _BadValueError(f"must be a whole number, not '{value}'") from None
        if number < minimum or (maximum is not None and number > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise _BadValueError(f"must be at least {minimum}{upper}, not {number}")
        return number

    return parse


def _price(value: str) -> float:
    try:
        price = float(value)
    except ValueError:
        raise _BadValueError(f"must be a price in US$ per hour like 0.25, not '{value}'") from None
    if not price > 0 or price == float("inf"):
        raise _BadValueError(f"must be a positive price in US$ per hour, not '{value}'")
    return price


def _flag(value: str) -> bool:
    if value in ("0", "1"):
        return value == "1"
    raise _BadValueError(f"must be 0 or 1, not '{value}'")


def _choice(*choices: str) -> Parser:
    def parse(value: str) -> str:
        if value not in choices:
            raise _BadValueError(f"must be one of {', '.join(choices)}, not '{value}'")
        return value

    return parse


def _url(*schemes: str) -> Parser:
    def parse(value: str) -> BrendaUrl:
        try:
            return parse_url(value, allowed=schemes)
        except ConfigError as error:
            raise _BadValueError(f"is wrong: {str(error).rstrip('.')}") from error

    return parse


def _notify(value: str) -> str:
    try:
        return str(parse_notify(value))
    except ConfigError as error:
        raise _BadValueError(f"is wrong: {str(error).rstrip('.')}") from error


def _mounted_snapshot(value: str) -> BrendaUrl:
    url = _url("ebs")(value)
    if not isinstance(url, EbsUrl) or url.directory is None:
        raise _BadValueError(f"must be ebs://SNAPSHOT,FOLDER (the folder is missing in '{value}')")
    return url


def _legacy(value: str) -> str:
    return value


SETTINGS: tuple[Setting, ...] = (
    # Credentials: the standard AWS chain is preferred (profiles, SSO, instance roles).
    Setting("AWS_PROFILE", _text, None, "AWS profile from ~/.aws/config to use."),
    Setting("AWS_ACCESS_KEY", _text, None, "Access key id (legacy; prefer an AWS profile)."),
    Setting("AWS_SECRET_KEY", _text, None, "Secret access key (legacy; prefer an AWS profile)."),
    # The job.
    Setting(
        "BLENDER_PROJECT", _url("s3", "file", "ebs"), None, "The project: s3://, file://, ebs://."
    ),
    Setting("WORK_QUEUE", _url("sqs"), None, "The work queue: sqs://NAME."),
    Setting("RENDER_OUTPUT", _url("s3", "file"), None, "Where frames go: s3://BUCKET[/PREFIX]."),
    Setting(
        "FARM_PROJECTS",
        _url("s3"),
        None,
        "S3 prefix of every project of the farm, which nodes may read (default: the folder "
        "holding BLENDER_PROJECT).",
    ),
    Setting(
        "FARM_OUTPUTS",
        _url("s3"),
        None,
        "S3 prefix of every job's frames, which nodes may write (default: the folder holding "
        "RENDER_OUTPUT).",
    ),
    Setting(
        "NOTIFY",
        _notify,
        None,
        "Where a submitted job's news goes (finished, a task dead-lettered, the budget stopped the "
        "fleet, cancelled): sns://TOPIC_ARN of a topic named brenda-FARM-..., or an https:// "
        "webhook.",
    ),
    Setting(
        "ENDPOINT_URL",
        _text,
        None,
        "Another AWS-compatible endpoint for every call (default: AWS_ENDPOINT_URL, else AWS).",
    ),
    Setting("S3_REGION", _text, None, "Region of the S3 buckets (default: the AWS region)."),
    Setting("SQS_REGION", _text, None, "Region of the work queue (default: the AWS region)."),
    Setting("EC2_REGION", _text, None, "Region for EC2 nodes (default: the AWS region)."),
    # The queue and the node.
    Setting(
        "VISIBILITY_TIMEOUT",
        _count(1, 43200),
        120,
        "Seconds a taken task stays hidden from other nodes unless its lease is renewed.",
    ),
    Setting(
        "VISIBILITY_TIMEOUT_REASSERT",
        _count(1, 43200),
        30,
        "Seconds between lease renewals while a task runs.",
    ),
    Setting(
        "MAX_RECEIVE_COUNT",
        _count(1, 1000),
        3,
        "Tries before a failing task moves to the dead-letter queue.",
    ),
    Setting(
        "QUEUE_RETENTION",
        _count(60, 1209600),
        1209600,
        "Seconds SQS keeps a task that nobody finishes (at most 14 days).",
    ),
    Setting(
        "N_RETRIES",
        _count(1),
        5,
        "Failures in a row (lasting RESET_PERIOD) after which a node gives up on AWS.",
    ),
    Setting(
        "ERROR_PAUSE",
        _count(0),
        30,
        "Longest pause in seconds between retries (backoff from 1 s, doubling, with jitter).",
    ),
    Setting(
        "RESET_PERIOD",
        _count(1),
        3600,
        "Seconds that failures in a row must last before a node gives up; a success resets them.",
    ),
    Setting("CURL_MAX_THREADS", _count(1, 256), 16, "Parallel connections per S3 transfer."),
    Setting("CURL_N_RETRIES", _legacy, None, "Legacy paracurl setting; accepted, no effect."),
    Setting("CURL_DEBUG", _legacy, None, "Legacy paracurl setting; accepted, no effect."),
    Setting(
        "BLENDER_PROJECT_ALWAYS_REFETCH",
        _flag,
        False,
        "1: download the project again even when its ETag is unchanged.",
    ),
    Setting("WORK_DIR", _text, ".", "Node work folder (project, outputs, temporary files)."),
    Setting("DONE", _choice("exit", "shutdown", "poll"), None, "What a node does when idle."),
    Setting("SHUTDOWN", _flag, False, "Legacy: 1 means DONE=shutdown when DONE is unset."),
    Setting("RUNNING_ON_EC2", _flag, True, "0: the node skips EC2 metadata (local testing)."),
    Setting(
        "BLENDER", _text, None, "Blender executable for nodes (default: blender on PATH, else bpy)."
    ),
    Setting(
        "BLENDERS",
        _text,
        None,
        "Blender programs of a node, comma-separated; each task renders with the one whose "
        "version (major.minor) saved its .blend (default: BLENDER alone).",
    ),
    Setting(
        "BLENDER_RELEASES",
        _url("s3"),
        None,
        "S3 prefix of the farm's Blender releases (brenda-run blender add), which a node "
        "fetches when it lacks a job's version (default: FARM_PROJECTS/blender/).",
    ),
    Setting(
        "BLENDER_VERSIONS",
        _text,
        "4.5.5",
        "Blender releases brenda-run image installs on the node image, space-separated.",
    ),
    Setting(
        "BLENDER_DOWNLOAD_URL",
        _text,
        "https://download.blender.org/release",
        "Where brenda-run blender add downloads Blender's official releases from.",
    ),
    Setting(
        "JOB_REFRESH",
        _count(1, 600),
        15,
        "Seconds between a node's reads of its farm's job records (one S3 LIST each).",
    ),
    Setting(
        "WARM_BLENDER",
        _flag,
        True,
        "1: keep Blender loaded between structured tasks of one .blend; 0: start it per task.",
    ),
    Setting("WARM_TASKS", _count(1), 100, "Tasks a warm Blender renders before it is replaced."),
    Setting(
        "WARM_MEMORY",
        _count(0),
        0,
        "MB of memory past which a warm Blender is replaced; 0: half the machine's memory.",
    ),
    Setting(
        "TASK_TIMEOUT",
        _count(1, 7 * 24 * 3600),
        21600,
        "Seconds a task may run before the node stops it as failed (a job may set its own).",
    ),
    Setting(
        "TASK_SILENCE",
        _count(0, 7 * 24 * 3600),
        1800,
        "Seconds a task may print nothing before the node stops it as hung; 0: no limit.",
    ),
    Setting(
        "RECEIVE_WAIT",
        _count(0, 20),
        10,
        "Seconds a node's request for a task waits for one to arrive (SQS long polling).",
    ),
    Setting(
        "POLL_PAUSE", _count(0), 15, "Seconds an idle node with DONE=poll waits between polls."
    ),
    Setting(
        "SHUTDOWN_COMMAND",
        _text,
        "shutdown -h now",
        "Command a node with DONE=shutdown runs to power its machine off.",
    ),
    Setting(
        "METADATA_URL",
        _text,
        "http://169.254.169.254",
        "EC2 instance metadata endpoint the node watches for spot interruption notices.",
    ),
    Setting(
        "METADATA_POLL", _count(1, 120), 5, "Seconds between a node's spot interruption checks."
    ),
    Setting(
        "ON_DEMAND_PRICE",
        _price,
        None,
        "US$ per hour an on-demand node costs (default: AWS's list price for common types in "
        "us-east-1, us-east-2 and us-west-2).",
    ),
    # The fleet.
    Setting("FARM", _text, "brenda", "Farm name: the tag on everything brenda-run creates."),
    Setting("AMI_ID", _text, None, "Node image (see deploy/build-node-image.sh)."),
    Setting(
        "SSH_FROM",
        _text,
        None,
        "Address range (CIDR) admitted to the nodes' SSH (default: this machine's address).",
    ),
    Setting(
        "SSH_FROM_WIDE",
        _flag,
        False,
        "1: accept an SSH_FROM range wider than /24 (IPv4) or /56 (IPv6).",
    ),
    Setting(
        "CHECKIP_URL",
        _text,
        "https://checkip.amazonaws.com",
        "Service that tells brenda-run init this machine's public address.",
    ),
    Setting("INSTANCE_TYPE", _text, "c7i.2xlarge", "EC2 instance type for nodes."),
    Setting(
        "INSTANCE_TYPES",
        _text,
        None,
        "Types of similar size a fleet may mix, like c7i.2xlarge,c6i.2xlarge,c6a.2xlarge "
        "(default: INSTANCE_TYPE).",
    ),
    Setting("BID_PRICE", _price, None, "Spot maximum price in US$ per hour."),
    Setting("USE_ISTORE", _flag, None, "1: nodes work on the instance store."),
    Setting("NO_EBS", _flag, False, "1: launch with no block-device mapping."),
    Setting("SSH_KEY_NAME", _text, "brenda", "EC2 key pair name."),
    Setting("SECURITY_GROUP", _text, "brenda", "EC2 security group name."),
    Setting("SSH_PUBKEY", _text, "~/.ssh/id_rsa.pub", "Public key imported by brenda-run init."),
    Setting("SSH_IDENTITY", _text, "~/.ssh/id_rsa", "Private key for brenda-tool."),
    Setting("AWS_USER", _text, "ubuntu", "SSH login user on nodes."),
    Setting("TOOL_THREADS", _count(1, 1024), 64, "Parallel ssh/rsync sessions of brenda-tool."),
    Setting("REMOTE_PIDFILE", _text, "brenda.pid", "Node pid file checked by prune."),
    Setting(
        "REMOTE_WORK_DIR",
        _text,
        "/var/lib/brenda",
        "The nodes' work folder, where prune and perf read task_count and task_last.",
    ),
    Setting("EBS_MANAGE_INSTANCE_TYPE", _text, "t3.micro", "Instance type for brenda-ebs."),
    Setting("EBS_MANAGE_AVAILABILITY_ZONE", _text, None, "Availability zone for brenda-ebs."),
)

SETTINGS_BY_KEY: dict[str, Setting] = {setting.key: setting for setting in SETTINGS}


def _setting_for(key: str) -> Setting | None:
    if key in SETTINGS_BY_KEY:
        return SETTINGS_BY_KEY[key]
    match = _ADDITIONAL_EBS.match(key)
    if match and int(match.group(1)) < MAX_ADDITIONAL_EBS:
        return Setting(key, _mounted_snapshot, None, "An extra snapshot: ebs://SNAPSHOT,FOLDER.")
    return None


@dataclass(frozen=True)
class Config:
    """Parsed settings and where each one came from (for error messages)."""

    values: Mapping[str, Value]
    origins: Mapping[str, str]
    file: Path | None
    """The configuration file that was read, if any."""
    set_in: str | None = None
    """Where these settings are set when not in a file and ``BRENDA_*`` variables (the
    add-on's preferences), for the sentence that asks for a missing one."""

    def get(self, key: str) -> Value | None:
        if key in self.values:
            return self.values[key]
        setting = _setting_for(key)
        if setting is None:
            raise KeyError(key)
        return setting.default

    def _typed(self, key: str, kind: type[T]) -> T | None:
        value = self.get(key)
        if value is None or isinstance(value, kind):
            return value
        raise TypeError(f"setting {key} is a {type(value).__name__}, not {kind.__name__}")

    def _required(self, key: str, kind: type[T]) -> T:
        value = self._typed(key, kind)
        if value is None:
            raise self.missing(key)
        return value

    def text(self, key: str) -> str:
        """The key's text; a key with no value (and no default) is a ConfigError naming it."""
        return self._required(key, str)

    def optional_text(self, key: str) -> str | None:
        """The key's text, or None where it has no value."""
        return self._typed(key, str)

    def integer(self, key: str) -> int:
        return self._required(key, int)

    def flag(self, key: str) -> bool:
        return self._required(key, bool)

    def optional_flag(self, key: str) -> bool | None:
        return self._typed(key, bool)

    def number(self, key: str) -> float:
        return self._required(key, float)

    def optional_number(self, key: str) -> float | None:
        return self._typed(key, float)

    def url(self, key: str, kind: type[T]) -> T:
        return self._required(key, kind)

    def optional_url(self, key: str, kind: type[T]) -> T | None:
        return self._typed(key, kind)

    def work_queue(self) -> SqsUrl | None:
        """The farm's one work queue (WORK_QUEUE), or None for a farm of jobs, whose every job
        has a queue of its own. This alone decides which of the two a farm is."""
        return self.optional_url("WORK_QUEUE", SqsUrl)

    @property
    def serves_jobs(self) -> bool:
        """A farm of jobs (no WORK_QUEUE): its nodes and fleet serve every active job."""
        return self.work_queue() is None

    def done_mode(self) -> str:
        """The node's idle policy: DONE, else the legacy SHUTDOWN flag."""
        done = self.optional_text("DONE")
        if done is not None:
            return done
        return "shutdown" if self.flag("SHUTDOWN") else "exit"

    def additional_ebs(self) -> list[EbsUrl]:
        """ADDITIONAL_EBS_<n> snapshots in index order."""
        keyed: list[tuple[int, EbsUrl]] = []
        for key, value in self.values.items():
            match = _ADDITIONAL_EBS.match(key)
            if match and isinstance(value, EbsUrl):
                keyed.append((int(match.group(1)), value))
        return [url for _, url in sorted(keyed, key=lambda pair: pair[0])]

    def missing(self, key: str) -> MissingSetting:
        setting = _setting_for(key)
        where = self.file or DEFAULT_CONFIG_PATH
        what = ""
        if setting is not None:
            description = setting.description.rstrip(".")
            what = f" ({description[0].lower()}{description[1:]})"
        if self.set_in is not None:
            return MissingSetting(f"{key} is not set in {self.set_in}{what}.")
        return MissingSetting(
            f"{key} is not set: add {key}=... to {where} or set {ENV_PREFIX}{key}{what}."
        )


NODE_REQUIRED = ("WORK_QUEUE", "BLENDER_PROJECT", "RENDER_OUTPUT")
JOBS_NODE_REQUIRED = ("FARM_OUTPUTS",)


def node_required(config: Config) -> tuple[str, ...]:
    """The settings a node cannot start without: WORK_QUEUE with BLENDER_PROJECT and
    RENDER_OUTPUT, or, without WORK_QUEUE, FARM_OUTPUTS (the node serves every job of its farm)."""
    if config.serves_jobs and config.get("FARM_OUTPUTS") is not None:
        return JOBS_NODE_REQUIRED
    return NODE_REQUIRED


def resolve_config_path(explicit: str | Path | None, environ: Mapping[str, str]) -> Path | None:
    """The file to read: ``-c FILE``, else ``$BRENDA_CONFIG``, else ``~/.brenda.conf`` if present.

    A file that was named explicitly (flag or variable) must exist: one that does not is a usage
    error (exit status 2), like any file the command line names that is not there.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise UsageError(f"Configuration file {path} (given with -c) does not exist.")
        return path
    from_env = environ.get(CONFIG_PATH_ENV)
    if from_env:
        path = Path(from_env).expanduser()
        if not path.is_file():
            raise UsageError(f"Configuration file {path} (from ${CONFIG_PATH_ENV}) does not exist.")
        return path
    default = Path(environ.get("HOME", "~")) / ".brenda.conf"
    default = default.expanduser()
    return default if default.is_file() else None


def read_config_file(path: Path, environ: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """Return ``(key, raw value, origin)`` for each setting line of a Brenda config file."""
    try:
        # utf-8-sig: a byte-order mark (Windows editors) must not hide the first key.
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError(f"Configuration file {path} is not UTF-8 text.") from error
    except OSError as error:
        raise ConfigError(
            f"Configuration file {path} cannot be read: {error.strerror or error}."
        ) from error
    entries: list[tuple[str, str, str]] = []
    earlier: dict[str, str] = {}
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        origin = f"{path}, line {number}"
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            log.warning("%s: ignored, not a KEY=VALUE line: %s", origin, line)
            continue
        key, value = match.groups()
        value = _unquote_and_expand(value, earlier, environ)
        earlier[key] = value
        entries.append((key, value, origin))
    return entries


def _unquote_and_expand(value: str, earlier: Mapping[str, str], environ: Mapping[str, str]) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        if value[0] == "'":
            return value[1:-1]
        value = value[1:-1]

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in earlier:
            return earlier[name]
        return environ.get(name, "")

    return _REFERENCE.sub(substitute, value)


def load_config(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, tuple[str, str]] | None = None,
) -> Config:
    """Read settings with precedence flags > ``BRENDA_*`` environment > file > defaults.

    ``path`` is the ``-c`` argument (None: ``$BRENDA_CONFIG`` or ``~/.brenda.conf``);
    ``overrides`` maps a key to ``(raw value, origin)``, the origin naming the flag.
    """
    environ = os.environ if environ is None else environ
    file = resolve_config_path(path, environ)
    layers: list[tuple[str, str, str]] = []
    if file is not None:
        layers.extend(read_config_file(file, environ))
    for name, value in sorted(environ.items()):
        if name.startswith(ENV_PREFIX) and name != CONFIG_PATH_ENV:
            layers.append((name[len(ENV_PREFIX) :], value, f"environment variable {name}"))
    for key, (value, origin) in (overrides or {}).items():
        layers.append((key, value, origin))
    return _parsed(layers, file=file)


def given_config(values: Mapping[str, str], *, set_in: str) -> Config:
    """Settings given whole, ``set_in`` a place that is neither a file nor the environment
    (the add-on's preferences): no ``~/.brenda.conf`` and no ``BRENDA_*`` variable is read."""
    return _parsed([(key, value, set_in) for key, value in values.items()], set_in=set_in)


def _parsed(
    layers: list[tuple[str, str, str]], *, file: Path | None = None, set_in: str | None = None
) -> Config:
    """The settings ``(key, raw value, origin)`` parsed, a later layer winning over an earlier."""
    winners: dict[str, tuple[Setting, str, str]] = {}
    for key, raw, origin in layers:
        setting = _setting_for(key)
        if setting is None:
            log.warning("%s: unknown setting %s ignored; check its spelling.", origin, key)
            continue
        winners[key] = (setting, raw, origin)

    values: dict[str, Value] = {}
    origins: dict[str, str] = {}
    for key, (setting, raw, origin) in winners.items():
        try:
            values[key] = setting.parse(raw)
        except _BadValueError as problem:
            raise ConfigError(f"{origin}: {key} {problem}.") from None
        origins[key] = origin
    config = Config(values=values, origins=origins, file=file, set_in=set_in)
    check_lease(config)
    return config


def check_lease(config: Config) -> None:
    """A lease renewed only after it ran out lets a second node render the same task."""
    timeout = config.integer("VISIBILITY_TIMEOUT")
    reassert = config.integer("VISIBILITY_TIMEOUT_REASSERT")
    if reassert >= timeout:
        where = config.origins.get("VISIBILITY_TIMEOUT_REASSERT", "the default")
        raise ConfigError(
            f"{where}: VISIBILITY_TIMEOUT_REASSERT {reassert} must be less than "
            f"VISIBILITY_TIMEOUT {timeout}, or a task's lease runs out before it is renewed and "
            "a second node renders the same frames."
        )
