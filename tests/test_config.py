# SPDX-License-Identifier: GPL-3.0-or-later
"""Configuration: the original's file format and keys, BRENDA_* overrides, flags, errors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.core.config import (
    SETTINGS_BY_KEY,
    Config,
    given_config,
    load_config,
    node_required,
    read_config_file,
)
from shared.core.errors import ConfigError, UsageError
from shared.core.urls import EbsUrl, FileUrl, S3Url, SqsUrl

# Every key the original Brenda 0.5.6 read (reference section 2.2).
ORIGINAL_KEYS = """
AWS_ACCESS_KEY AWS_SECRET_KEY BLENDER_PROJECT WORK_QUEUE RENDER_OUTPUT S3_REGION SQS_REGION
EC2_REGION VISIBILITY_TIMEOUT VISIBILITY_TIMEOUT_REASSERT N_RETRIES ERROR_PAUSE RESET_PERIOD
CURL_MAX_THREADS CURL_N_RETRIES CURL_DEBUG BLENDER_PROJECT_ALWAYS_REFETCH WORK_DIR USE_ISTORE
NO_EBS DONE SHUTDOWN RUNNING_ON_EC2 AMI_ID INSTANCE_TYPE BID_PRICE SSH_KEY_NAME SECURITY_GROUP
SSH_PUBKEY SSH_IDENTITY AWS_USER TOOL_THREADS REMOTE_PIDFILE EBS_MANAGE_INSTANCE_TYPE
EBS_MANAGE_AVAILABILITY_ZONE
""".split()

ORIGINAL_VALUES = {
    "AWS_ACCESS_KEY": "AKIAEXAMPLE",
    "AWS_SECRET_KEY": "secret",
    "BLENDER_PROJECT": "s3://my-project/myproject.tar.gz",
    "WORK_QUEUE": "sqs://frames",
    "RENDER_OUTPUT": "s3://my-frames/shot1",
    "VISIBILITY_TIMEOUT": "120",
    "VISIBILITY_TIMEOUT_REASSERT": "30",
    "N_RETRIES": "5",
    "ERROR_PAUSE": "30",
    "RESET_PERIOD": "3600",
    "CURL_MAX_THREADS": "16",
    "BLENDER_PROJECT_ALWAYS_REFETCH": "0",
    "USE_ISTORE": "1",
    "NO_EBS": "0",
    "DONE": "shutdown",
    "SHUTDOWN": "0",
    "RUNNING_ON_EC2": "1",
    "BID_PRICE": "0.07",
    "TOOL_THREADS": "64",
}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_every_original_key_is_understood(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = [f"{key}={ORIGINAL_VALUES.get(key, 'value')}" for key in ORIGINAL_KEYS]
    config_file = write(tmp_path / "brenda.conf", "\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING):
        config = load_config(config_file)
    assert caplog.records == []
    assert set(ORIGINAL_KEYS) <= set(SETTINGS_BY_KEY)
    assert config.url("WORK_QUEUE", SqsUrl) == SqsUrl("frames")
    assert config.url("RENDER_OUTPUT", S3Url) == S3Url("my-frames", "shot1/")
    assert config.integer("VISIBILITY_TIMEOUT") == 120
    assert config.optional_number("BID_PRICE") == 0.07
    assert config.optional_flag("USE_ISTORE") is True
    assert config.done_mode() == "shutdown"


def test_defaults_without_any_file() -> None:
    config = load_config()
    assert config.file is None
    assert config.integer("VISIBILITY_TIMEOUT") == 120
    assert config.integer("VISIBILITY_TIMEOUT_REASSERT") == 30
    assert config.integer("MAX_RECEIVE_COUNT") == 3
    assert config.integer("N_RETRIES") == 5
    assert config.text("WORK_DIR") == "."
    assert config.done_mode() == "exit"
    assert config.optional_url("WORK_QUEUE", SqsUrl) is None


def test_file_format_quotes_and_expansion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SHOT", "shot9")
    config_file = write(
        tmp_path / "c.conf",
        "\n".join(
            [
                "# a comment",
                "",
                "BUCKET=frames-bucket",
                "  WORK_QUEUE=sqs://q_$SHOT  ",
                'RENDER_OUTPUT="s3://${BUCKET}/$SHOT/$UNSET_VAR"',
                "AMI_ID='ami-$SHOT'",
                "INSTANCE_TYPE=c7i.large # not a comment",
                "SSH_KEY_NAME = ignored",
                "export SECURITY_GROUP=ignored",
            ]
        )
        + "\n",
    )
    with caplog.at_level(logging.WARNING):
        config = load_config(config_file)
    assert config.url("WORK_QUEUE", SqsUrl) == SqsUrl("q_shot9")
    assert config.url("RENDER_OUTPUT", S3Url) == S3Url("frames-bucket", "shot9/")
    assert config.optional_text("AMI_ID") == "ami-$SHOT"
    assert config.text("INSTANCE_TYPE") == "c7i.large # not a comment"
    assert config.text("SSH_KEY_NAME") == "brenda"
    assert config.text("SECURITY_GROUP") == "brenda"
    messages = [record.getMessage() for record in caplog.records]
    assert f"{config_file}, line 3: unknown setting BUCKET ignored; check its spelling." in messages
    assert f"{config_file}, line 8: ignored, not a KEY=VALUE line: SSH_KEY_NAME = ignored" in (
        messages
    )
    assert any("line 9: ignored" in message for message in messages)


def test_precedence_flag_over_environment_over_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = write(tmp_path / "c.conf", "BID_PRICE=0.1\nINSTANCE_TYPE=a.file\nAMI_ID=ami-f\n")
    monkeypatch.setenv("BRENDA_BID_PRICE", "0.2")
    monkeypatch.setenv("BRENDA_INSTANCE_TYPE", "b.env")
    config = load_config(config_file, overrides={"BID_PRICE": ("0.3", "option -p")})
    assert config.optional_number("BID_PRICE") == 0.3
    assert config.text("INSTANCE_TYPE") == "b.env"
    assert config.optional_text("AMI_ID") == "ami-f"
    assert config.origins["BID_PRICE"] == "option -p"
    assert config.origins["INSTANCE_TYPE"] == "environment variable BRENDA_INSTANCE_TYPE"
    assert config.origins["AMI_ID"] == f"{config_file}, line 3"


def test_an_overridden_bad_value_does_not_matter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = write(tmp_path / "c.conf", "BID_PRICE=cheap\n")
    monkeypatch.setenv("BRENDA_BID_PRICE", "0.5")
    assert load_config(config_file).number("BID_PRICE") == 0.5


def test_config_file_lookup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_environment: Path
) -> None:
    home_file = write(isolated_environment / ".brenda.conf", "WORK_QUEUE=sqs://from-home\n")
    assert load_config().file == home_file
    assert load_config().url("WORK_QUEUE", SqsUrl) == SqsUrl("from-home")
    env_file = write(tmp_path / "env.conf", "WORK_QUEUE=sqs://from-env\n")
    monkeypatch.setenv("BRENDA_CONFIG", str(env_file))
    assert load_config().url("WORK_QUEUE", SqsUrl) == SqsUrl("from-env")
    flag_file = write(tmp_path / "flag.conf", "WORK_QUEUE=sqs://from-flag\n")
    assert load_config(flag_file).url("WORK_QUEUE", SqsUrl) == SqsUrl("from-flag")


def test_named_config_files_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match=r"missing.conf \(given with -c\) does not exist"):
        load_config(tmp_path / "missing.conf")
    monkeypatch.setenv("BRENDA_CONFIG", str(tmp_path / "gone.conf"))
    with pytest.raises(UsageError, match=r"gone.conf \(from \$BRENDA_CONFIG\) does not exist"):
        load_config()


def test_unreadable_config_files(tmp_path: Path) -> None:
    binary = tmp_path / "binary.conf"
    binary.write_bytes(b"WORK_QUEUE=\xff\n")
    with pytest.raises(ConfigError, match="binary.conf is not UTF-8 text"):
        load_config(binary)
    folder = tmp_path / "folder.conf"
    folder.mkdir()
    with pytest.raises(ConfigError, match="folder.conf cannot be read"):
        read_config_file(folder, {})


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "BID_PRICE=cheap",
            "line 2: BID_PRICE must be a price in US$ per hour like 0.25, not 'cheap'.",
        ),
        ("BID_PRICE=-1", "line 2: BID_PRICE must be a positive price"),
        ("WORK_QUEUE=http://frames", "line 2: WORK_QUEUE is wrong: 'http://frames' is not a URL"),
        ("WORK_QUEUE=s3://bucket", "line 2: WORK_QUEUE is wrong: 's3://bucket' has the wrong kind"),
        ("RENDER_OUTPUT=ftp://x", "line 2: RENDER_OUTPUT is wrong: 'ftp://x' is not a URL"),
        ("VISIBILITY_TIMEOUT=-5", "line 2: VISIBILITY_TIMEOUT must be at least 1"),
        ("N_RETRIES=many", "line 2: N_RETRIES must be a whole number, not 'many'."),
        ("TOOL_THREADS=0", "line 2: TOOL_THREADS must be at least 1 and at most 1024, not 0."),
        ("DONE=sleep", "line 2: DONE must be one of exit, shutdown, poll, not 'sleep'."),
        ("NO_EBS=yes", "line 2: NO_EBS must be 0 or 1, not 'yes'."),
        ("ADDITIONAL_EBS_0=ebs://snap-1", "line 2: ADDITIONAL_EBS_0 must be ebs://SNAPSHOT,FOLDER"),
        ("INSTANCE_TYPE=", "line 2: INSTANCE_TYPE must not be empty."),
    ],
    ids=lambda value: value.split("=")[0] if "=" in value else "msg",
)
def test_bad_values_name_file_line_and_key(tmp_path: Path, line: str, message: str) -> None:
    config_file = write(tmp_path / "bad.conf", f"# Brenda\n{line}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config_file)
    assert str(caught.value).startswith(f"{config_file}, {message}")
    assert "\n" not in str(caught.value)


def test_bad_environment_and_flag_values_name_their_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRENDA_MAX_RECEIVE_COUNT", "-2")
    with pytest.raises(ConfigError, match="^environment variable BRENDA_MAX_RECEIVE_COUNT: "):
        load_config()
    monkeypatch.delenv("BRENDA_MAX_RECEIVE_COUNT")
    with pytest.raises(ConfigError, match="^option -p: BID_PRICE must be a price"):
        load_config(overrides={"BID_PRICE": ("x", "option -p")})


def test_missing_required_key_says_how_to_set_it() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config().url("WORK_QUEUE", SqsUrl)
    assert str(caught.value) == (
        "WORK_QUEUE is not set: add WORK_QUEUE=... to ~/.brenda.conf or set BRENDA_WORK_QUEUE "
        "(the work queue: sqs://NAME)."
    )


@pytest.mark.parametrize(
    ("read", "key"),
    [
        (lambda config: config.text("AMI_ID"), "AMI_ID"),
        (lambda config: config.number("BID_PRICE"), "BID_PRICE"),
        (lambda config: config.flag("USE_ISTORE"), "USE_ISTORE"),
        (lambda config: config.url("FARM_OUTPUTS", S3Url), "FARM_OUTPUTS"),
    ],
)
def test_a_key_without_a_value_is_missing_never_none(
    read: Callable[[Config], object], key: str
) -> None:
    config = load_config(environ={})
    with pytest.raises(ConfigError, match=f"^{key} is not set: add {key}=..."):
        read(config)
    assert config.optional_text("AMI_ID") is None
    assert config.optional_number("BID_PRICE") is None
    assert config.optional_flag("USE_ISTORE") is None
    assert config.optional_url("FARM_OUTPUTS", S3Url) is None


def test_work_queue_alone_decides_a_farm_of_jobs() -> None:
    jobs = load_config(environ={"BRENDA_FARM_OUTPUTS": "s3://frames/jobs/"})
    assert jobs.work_queue() is None
    assert jobs.serves_jobs
    assert node_required(jobs) == ("FARM_OUTPUTS",)
    queue = load_config(
        environ={"BRENDA_FARM_OUTPUTS": "s3://frames/jobs/", "BRENDA_WORK_QUEUE": "sqs://q"}
    )
    assert queue.work_queue() == SqsUrl("q")
    assert not queue.serves_jobs
    assert node_required(queue) == ("WORK_QUEUE", "BLENDER_PROJECT", "RENDER_OUTPUT")


def test_given_settings_read_no_file_and_no_environment(
    isolated_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (isolated_environment / ".brenda.conf").write_text("WORK_QUEUE=sqs://from-file\nFARM=file\n")
    monkeypatch.setenv("BRENDA_BLENDER_PROJECT", "s3://from-env/shot.tar.gz")
    monkeypatch.setenv("BRENDA_FARM", "environment")
    config = given_config({"FARM": "studio"}, set_in="Brenda's add-on preferences")
    assert (config.text("FARM"), config.get("WORK_QUEUE"), config.get("BLENDER_PROJECT")) == (
        "studio",
        None,
        None,
    )
    assert config.file is None
    with pytest.raises(ConfigError) as caught:
        config.url("WORK_QUEUE", SqsUrl)
    assert str(caught.value) == (
        "WORK_QUEUE is not set in Brenda's add-on preferences (the work queue: sqs://NAME)."
    )
    with pytest.raises(ConfigError, match="^Brenda's add-on preferences: FARM must not be empty"):
        given_config({"FARM": ""}, set_in="Brenda's add-on preferences")


def test_additional_ebs_and_legacy_shutdown(tmp_path: Path) -> None:
    config_file = write(
        tmp_path / "c.conf",
        "ADDITIONAL_EBS_1=ebs://snap-2,textures\nADDITIONAL_EBS_0=ebs://assets,lib/x\n"
        "SHUTDOWN=1\nBLENDER_PROJECT=file:///projects/shot\n",
    )
    config = load_config(config_file)
    assert config.additional_ebs() == [EbsUrl("assets", "lib/x"), EbsUrl("snap-2", "textures")]
    assert config.done_mode() == "shutdown"
    assert config.url("BLENDER_PROJECT", FileUrl) == FileUrl(Path("/projects/shot"))


def test_unknown_environment_setting_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("BRENDA_WORK_QEUE", "sqs://typo")
    with caplog.at_level(logging.WARNING):
        load_config()
    assert [record.getMessage() for record in caplog.records] == [
        "environment variable BRENDA_WORK_QEUE: unknown setting WORK_QEUE ignored; "
        "check its spelling."
    ]


def test_a_byte_order_mark_does_not_hide_the_first_key(tmp_path: Path) -> None:
    path = tmp_path / "brenda.conf"
    path.write_bytes("\ufeffWORK_QUEUE=sqs://jobs\nDONE=poll\n".encode())
    config = load_config(path, environ={})
    assert config.optional_url("WORK_QUEUE", SqsUrl) == SqsUrl("jobs")
    assert config.optional_text("DONE") == "poll"


@pytest.mark.parametrize("reassert", ["120", "200"])
def test_a_lease_renewed_after_it_runs_out_is_refused(tmp_path: Path, reassert: str) -> None:
    path = tmp_path / "brenda.conf"
    path.write_text(f"VISIBILITY_TIMEOUT=120\nVISIBILITY_TIMEOUT_REASSERT={reassert}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert str(caught.value) == (
        f"{path}, line 2: VISIBILITY_TIMEOUT_REASSERT {reassert} must be less than "
        "VISIBILITY_TIMEOUT 120, or a task's lease runs out before it is renewed and a second "
        "node renders the same frames."
    )
    with pytest.raises(ConfigError, match="the default: VISIBILITY_TIMEOUT_REASSERT 30 must"):
        load_config(environ={"BRENDA_VISIBILITY_TIMEOUT": "30"})
