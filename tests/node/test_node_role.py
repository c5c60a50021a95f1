# SPDX-License-Identifier: GPL-3.0-or-later
"""The node role that ``brenda-run init`` makes, enforced by moto's server: a node's credentials
are denied each call that governs the farm and allowed each call rendering needs, and a real
node renders a job with them.

Anything that runs on a node can use its credentials, so these are what a hostile task may do.
moto checks each request's action and resource against the role's policy, but evaluates neither
conditions nor policy variables (moto/iam/access_control.py). So the role's policy variable is
resolved here as AWS resolves ``aws:userid`` for an instance's role (``<role id>:<instance id>``,
the role session being named after the instance), and the two conditions are shown where they
act: S3 refuses a conditional write over a stored frame, and the statements carry the condition
keys AWS documents (``s3:if-none-match``; ``autoscaling:MinSize`` and ``MaxSize``). And moto
recomputes S3 signatures wrongly for a query value holding a "/" (a listing's prefix: getmoto/moto
issue 5948), so S3 signatures go unchecked here; S3 still checks whose key it is and its policy.
moto also checks GetQueueUrl against any queue ("*") rather than the queue named, as AWS does:
here it checks the queue named; and SNS calls against any topic ("*"): here against the topic
named. It checks every EC2 call against "*", so the budget's drain tag (CreateTags on the farm's
instances only) cannot be shown allowed here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError
from moto.iam.access_control import S3IAMRequest
from moto.sns.responses import SNSResponse
from moto.sqs.responses import SQSResponse

from shared.aws.iam import OWN_LEDGER_VARIABLE
from shared.cli.run import main as brenda_run
from tests.node.conftest import Farm, make_sample_blend, submit_job

pytestmark = pytest.mark.slow

INSTANCE = "i-0a1b2c3d4e5f60718"
ROLE = "brenda-node-studio"


def enforce_iam(endpoint: str, after: float) -> None:
    """moto checks every request's credentials and policies after ``after`` more requests."""
    requests.post(f"{endpoint}/moto-api/reset-auth", data=str(after).encode(), timeout=10)


@pytest.fixture
def enforced(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's server runs in this process (tests/conftest.py), where its S3 check is patched."""
    monkeypatch.setattr(S3IAMRequest, "check_signature", lambda _request: None)
    queue_of_request = SQSResponse._get_queue_name

    def queue_named(response: SQSResponse) -> str:
        return response._get_param("QueueName") or queue_of_request(response)

    monkeypatch.setattr(SQSResponse, "_get_queue_name", queue_named)

    def topic_named(response: SNSResponse) -> str:
        return response._get_param("TopicArn") or "*"

    monkeypatch.setattr(SNSResponse, "_determine_resource", topic_named, raising=False)
    yield
    enforce_iam(aws, float("inf"))  # the next tests run as before, whatever happened


def keys_of(credentials: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        **(
            {"aws_session_token": credentials["SessionToken"]}
            if "SessionToken" in credentials
            else {}
        ),
    }


def admin(boto_client: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Any]:
    """An IAM user who may do anything, for the artist's side of the test (brenda-work)."""
    iam = boto_client("iam")
    iam.create_user(UserName="artist")
    everything = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    policy = {"Version": "2012-10-17", "Statement": [everything]}
    iam.put_user_policy(UserName="artist", PolicyName="all", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="artist")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    return boto3.Session(region_name="us-east-1", **keys_of(key)).client


def node_credentials(boto_client: Any) -> tuple[dict[str, str], str]:
    """The role's credentials as EC2 gives them to the instance (a session named after it),
    and its ``aws:userid``; the role's policy variable resolved to it (moto does not)."""
    iam = boto_client("iam")
    role = iam.get_role(RoleName=ROLE)["Role"]
    assumed = boto_client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName=INSTANCE)
    user_id = assumed["AssumedRoleUser"]["AssumedRoleId"]
    assert user_id == f"{role['RoleId']}:{INSTANCE}"
    document = iam.get_role_policy(RoleName=ROLE, PolicyName="brenda-node")["PolicyDocument"]
    text = document if isinstance(document, str) else json.dumps(document)
    assert OWN_LEDGER_VARIABLE in text
    resolved = text.replace(OWN_LEDGER_VARIABLE, user_id)
    iam.put_role_policy(RoleName=ROLE, PolicyName="brenda-node", PolicyDocument=resolved)
    return assumed["Credentials"], user_id


def denied(call: Callable[..., Any], **arguments: Any) -> bool:
    try:
        call(**arguments)
    except ResponseParserError:  # moto lacks the call (HTTP 500), which it checks after IAM
        return False
    except ClientError as error:
        # moto answers the JSON protocol (SQS) in XML: the code is then the HTTP status
        code = error.response["Error"]["Code"]
        return code in ("AccessDenied", "AccessDeniedException", "403")
    return False


def allowed(call: Callable[..., Any], **arguments: Any) -> bool:
    """Past IAM: the call succeeded, or failed for another reason (moto lacks some calls)."""
    return not denied(call, **arguments)


def statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    [found] = [item for item in document["Statement"] if item["Sid"] == sid]
    return dict(found)


def test_a_node_renders_a_job_but_may_not_govern_the_farm(
    job_farm: Farm,
    boto_client: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    aws: str,
    enforced: None,
) -> None:
    # The farm's role, as 'brenda-run init' makes it for a farm of jobs.
    for key, value in {"FARM_PROJECTS": "s3://studio/projects/", "AMI_ID": "ami-12c6146b"}.items():
        monkeypatch.setenv(f"BRENDA_{key}", value)
    assert brenda_run(["--no-ssh-keys", "--no-security-group", "init"]) == 0
    monkeypatch.delenv("BRENDA_FARM_PROJECTS")  # the test's project is a folder on the node
    document = json.loads(
        json.dumps(
            boto_client("iam").get_role_policy(RoleName=ROLE, PolicyName="brenda-node")[
                "PolicyDocument"
            ]
        )
    )
    # The conditions moto does not evaluate: new frames only, and the group to zero only.
    assert statement(document, "StoreNewFrames")["Condition"] == {
        "Null": {"s3:if-none-match": "false"}
    }
    assert statement(document, "StoreFrameParts")["Condition"] == {
        "Bool": {"s3:ObjectCreationOperation": "false"}
    }
    assert statement(document, "NewEventMarkers")["Condition"] == {
        "Null": {"s3:if-none-match": "false"}
    }
    assert statement(document, "StopGroup")["Condition"]["NumericEquals"] == {
        "autoscaling:MinSize": "0",
        "autoscaling:MaxSize": "0",
    }

    ec2, scaling = boto_client("ec2"), boto_client("autoscaling")
    ec2.create_launch_template(
        LaunchTemplateName="brenda-studio", LaunchTemplateData={"ImageId": "ami-12c6146b"}
    )
    scaling.create_auto_scaling_group(
        AutoScalingGroupName="brenda-studio",
        LaunchTemplate={"LaunchTemplateName": "brenda-studio", "Version": "$Latest"},
        MinSize=0,
        MaxSize=2,
        DesiredCapacity=2,
        AvailabilityZones=["us-east-1a"],
        Tags=[{"Key": "brenda:farm", "Value": "studio", "PropagateAtLaunch": True}],
    )
    other_node = scaling.describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"][0][
        "InstanceId"
    ]
    artist = admin(boto_client, monkeypatch)
    credentials, user_id = node_credentials(boto_client)
    project = tmp_path / "shot"
    project.mkdir()
    make_sample_blend(project / "scene.blend", width=16, height=9, samples=1, frames=2)
    sns, sqs = artist("sns"), artist("sqs")
    farm_topic = sns.create_topic(Name="brenda-studio-news")["TopicArn"]
    other_topic = sns.create_topic(Name="payroll-alerts")["TopicArn"]
    inbox = sqs.create_queue(QueueName="artist-inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=farm_topic, Protocol="sqs", Endpoint=inbox_arn["Attributes"]["QueueArn"])
    job = submit_job(capsys, project, "--frames", "1-2", "--notify", f"sns://{farm_topic}")
    # Another task stored frame 2 already: no render replaces it.
    s3 = artist("s3")
    s3.put_object(Bucket="studio", Key=f"frames/{job}/frame_000002.png", Body=b"stored before")

    enforce_iam(aws, 0)
    node = job_farm.start_node(
        "a",
        environment={
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
        },
    )
    assert node.wait(timeout=180) == 0, job_farm.console("a")
    console = job_farm.console("a")
    assert "AccessDenied" not in console, console
    frame = s3.get_object(Bucket="studio", Key=f"frames/{job}/frame_000001.png")["Body"].read()
    assert frame.startswith(b"\x89PNG")
    kept = s3.get_object(Bucket="studio", Key=f"frames/{job}/frame_000002.png")["Body"].read()
    assert kept == b"stored before"
    assert "frame_000002.png was stored before (an earlier try of the task): it stays" in console
    listing = s3.list_objects_v2(Bucket="studio", Prefix=f"frames/{job}/.brenda/nodes/")
    [ledger] = [item["Key"] for item in listing["Contents"]]
    assert ledger.startswith(f"frames/{job}/.brenda/nodes/{user_id}-")
    # The node marked the job's end as a new object and published it to the farm's topic.
    [delivered] = sqs.receive_message(QueueUrl=inbox, WaitTimeSeconds=1)["Messages"]
    finished = json.loads(json.loads(delivered["Body"])["Message"])
    assert (finished["event"], finished["job"], finished["frames"]) == ("finished", job, 2)
    assert s3.head_object(Bucket="studio", Key=f"frames/{job}/.brenda/events/finished")
    # ... having stored the job's report first, as a new object, and linked it.
    report = f"frames/{job}/{job}-report.html"
    assert finished["report"] == f"s3://studio/{report}"
    assert s3.get_object(Bucket="studio", Key=report)["Body"].read().startswith(b"<!DOCTYPE")

    # What a hostile task on the node may not do with the same credentials.
    session = boto3.Session(region_name="us-east-1", **keys_of(credentials))
    once = Config(retries={"max_attempts": 1})
    node_s3, node_sqs = session.client("s3", config=once), session.client("sqs", config=once)
    node_scaling = session.client("autoscaling", config=once)
    node_ec2 = session.client("ec2", config=once)
    node_sns = session.client("sns", config=once)
    assert denied(node_sns.publish, TopicArn=other_topic, Message="{}")
    assert allowed(node_sns.publish, TopicArn=farm_topic, Message="{}")
    record = f"frames/.brenda/jobs/{job}.json"
    body = b"{}"
    assert denied(node_s3.put_object, Bucket="studio", Key=record, Body=body)
    assert denied(
        node_s3.put_object, Bucket="studio", Key="frames/.brenda/jobs/new.json", Body=body
    )
    others = f"frames/{job}/.brenda/nodes/{user_id[:-1]}9-other-node.json"
    assert denied(node_s3.put_object, Bucket="studio", Key=others, Body=body)
    assert denied(node_s3.put_object, Bucket="studio", Key=f"frames/{job}/run.sh", Body=body)
    assert denied(node_s3.put_object, Bucket="studio", Key="projects/shot/scene.blend", Body=body)
    assert denied(node_s3.delete_object, Bucket="studio", Key=f"frames/{job}/frame_000001.png")
    queue_urls = artist("sqs").list_queues(QueueNamePrefix="studio-job-")["QueueUrls"]
    assert queue_urls
    for queue_url in queue_urls:
        assert denied(node_sqs.send_message, QueueUrl=queue_url, MessageBody="{}")
        assert denied(node_sqs.purge_queue, QueueUrl=queue_url)
    assert denied(
        node_scaling.set_instance_protection,
        AutoScalingGroupName="brenda-studio",
        InstanceIds=[other_node],
        ProtectedFromScaleIn=True,
    )
    assert denied(
        node_scaling.terminate_instance_in_auto_scaling_group,
        InstanceId=other_node,
        ShouldDecrementDesiredCapacity=False,
    )
    assert denied(node_ec2.terminate_instances, InstanceIds=[other_node])
    assert denied(node_ec2.run_instances, ImageId="ami-12c6146b", MinCount=1, MaxCount=1)
    assert denied(
        session.client("iam", config=once).put_role_policy,
        RoleName=ROLE,
        PolicyName="more",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )

    # What rendering, its ledger and notes, and the budget's stop need.
    frame_3 = f"frames/{job}/frame_000003.png"
    assert allowed(node_s3.put_object, Bucket="studio", Key=frame_3, Body=b"new", IfNoneMatch="*")
    with pytest.raises(ClientError, match="PreconditionFailed"):  # S3 keeps what is stored
        node_s3.put_object(Bucket="studio", Key=frame_3, Body=b"again", IfNoneMatch="*")
    assert s3.get_object(Bucket="studio", Key=frame_3)["Body"].read() == b"new"
    # A --video job's claim and video: each stored once, by the node that claimed it.
    for key in (f"frames/{job}/.brenda/video-claim.txt", f"frames/{job}/{job}.mp4"):
        assert allowed(node_s3.put_object, Bucket="studio", Key=key, Body=b"new", IfNoneMatch="*")
        with pytest.raises(ClientError, match="PreconditionFailed"):
            node_s3.put_object(Bucket="studio", Key=key, Body=b"again", IfNoneMatch="*")
        assert s3.get_object(Bucket="studio", Key=key)["Body"].read() == b"new"
    assert statement(document, "ClaimVideos")["Condition"] == {
        "Null": {"s3:if-none-match": "false"}
    }
    assert "arn:aws:s3:::studio/frames/*/*.mp4" in statement(document, "StoreNewFrames")["Resource"]
    assert denied(node_s3.put_object, Bucket="studio", Key=f"frames/{job}/{job}.mov", Body=body)
    assert denied(node_s3.put_object, Bucket="studio", Key="frames/shot.mp4", Body=body)
    # The job's report, stored once by the node that sent 'finished', stays.
    with pytest.raises(ClientError, match="PreconditionFailed"):
        node_s3.put_object(Bucket="studio", Key=report, Body=b"again", IfNoneMatch="*")
    assert s3.get_object(Bucket="studio", Key=report)["Body"].read().startswith(b"<!DOCTYPE")
    new_only = statement(document, "StoreNewFrames")["Resource"]
    assert "arn:aws:s3:::studio/frames/*/*-report.html" in new_only
    assert denied(node_s3.put_object, Bucket="studio", Key="frames/shot-report.html", Body=body)
    own = f"frames/{job}/.brenda/nodes/{user_id}-node-20261207.json"
    assert allowed(node_s3.put_object, Bucket="studio", Key=own, Body=body)
    note = f"frames/{job}/.brenda/failures/message-1.txt"
    assert allowed(node_s3.put_object, Bucket="studio", Key=note, Body=b"why")
    assert allowed(node_s3.get_object, Bucket="studio", Key=record)
    assert allowed(node_sqs.get_queue_attributes, QueueUrl=queue_url, AttributeNames=["All"])
    assert allowed(
        node_scaling.record_lifecycle_action_heartbeat,
        LifecycleHookName="brenda-give-back",
        AutoScalingGroupName="brenda-studio",
        InstanceId=INSTANCE,
    )
    assert allowed(
        node_scaling.update_auto_scaling_group,
        AutoScalingGroupName="brenda-studio",
        MinSize=0,
        MaxSize=0,
        DesiredCapacity=0,
    )
