# SPDX-License-Identifier: GPL-3.0-or-later
"""boto3 sessions and clients, and AWS errors turned into sentences. No bpy module use.

Credentials come from the standard chain (environment, profiles, SSO, instance roles) unless the
legacy ``AWS_ACCESS_KEY``/``AWS_SECRET_KEY`` settings are present. The endpoint honours
``AWS_ENDPOINT_URL`` (and the per-service variants), which is how the local farm and the tests
reach moto's server: nothing here knows it is not AWS.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..core.config import Config
from ..core.errors import Cancelled, CloudError

DEFAULT_REGION = "us-east-1"
REGION_KEYS = {"sqs": "SQS_REGION", "s3": "S3_REGION", "ec2": "EC2_REGION"}


def make_session(config: Config) -> Any:
    """A boto3 session for the configured profile or legacy keys."""
    import boto3  # noqa: PLC0415 - lazy boto3
    import botocore.exceptions  # noqa: PLC0415 - lazy boto3

    profile = config.optional_text("AWS_PROFILE")
    try:
        return boto3.Session(
            profile_name=profile,
            aws_access_key_id=config.optional_text("AWS_ACCESS_KEY"),
            aws_secret_access_key=config.optional_text("AWS_SECRET_KEY"),
        )
    except botocore.exceptions.ProfileNotFound as error:
        raise CloudError(
            f"AWS profile '{error.kwargs.get('profile', profile)}' does not exist: check "
            "AWS_PROFILE and ~/.aws/config."
        ) from error


def region_for(service: str, config: Config, session: Any) -> str:
    key = REGION_KEYS.get(service)
    configured = config.optional_text(key) if key else None
    return configured or session.region_name or DEFAULT_REGION


def make_client(
    service: str,
    config: Config,
    *,
    session: Any = None,
    pool: int = 10,
    region: str | None = None,
) -> Any:
    """A client for ``service`` in ``region`` or its configured one, with standard retries."""
    from botocore.config import Config as BotoConfig  # noqa: PLC0415 - lazy boto3

    session = session or make_session(config)
    settings = BotoConfig(
        retries={"mode": "standard"},
        max_pool_connections=pool,
        connect_timeout=10,
        read_timeout=70,
    )
    return session.client(
        service,
        region_name=region or region_for(service, config, session),
        config=settings,
        endpoint_url=config.optional_text("ENDPOINT_URL"),
    )


def caller_user_id(config: Config) -> str:
    """The AWS user id the credentials act as: IAM policies' ``aws:userid``, ``<role id>:<instance
    id>`` for a node's instance role. STS answers it whatever the credentials may do."""
    with cloud_errors("asking AWS whose credentials these are"):
        return str(make_client("sts", config).get_caller_identity()["UserId"])


def error_code(error: BaseException) -> str:
    """The AWS error code of a ClientError, or an empty string."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


@contextmanager
def cloud_errors(action: str) -> Iterator[None]:
    """Turn boto errors raised while doing ``action`` (a phrase: "pushing tasks to sqs://x")
    into one CloudError sentence."""
    import boto3.exceptions  # noqa: PLC0415 - lazy boto3
    import botocore.exceptions as boto_errors  # noqa: PLC0415 - lazy boto3
    from botocore.parsers import ResponseParserError  # noqa: PLC0415 - lazy boto3

    try:
        yield
    except Cancelled:
        raise
    except boto_errors.NoCredentialsError as error:
        raise CloudError(
            f"No AWS credentials were found while {action}: run 'aws configure', set "
            "AWS_PROFILE, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
        ) from error
    except (boto_errors.PartialCredentialsError, boto_errors.CredentialRetrievalError) as error:
        raise CloudError(f"The AWS credentials are incomplete while {action}: {error}.") from error
    except (
        boto_errors.EndpointConnectionError,
        boto_errors.ConnectTimeoutError,
        boto_errors.ReadTimeoutError,
        boto_errors.ConnectionClosedError,
    ) as error:
        where = os.environ.get("AWS_ENDPOINT_URL") or "AWS"
        raise CloudError(
            f"Could not reach {where} while {action}: check the network connection "
            "(and AWS_ENDPOINT_URL if you set it)."
        ) from error
    except boto_errors.ClientError as error:
        raise CloudError(_client_error_sentence(action, error)) from error
    except boto3.exceptions.S3UploadFailedError as error:
        raise CloudError(f"AWS refused {action}: {_last_line(error)}.") from error
    except boto_errors.BotoCoreError as error:
        raise CloudError(f"AWS failed while {action}: {error}.") from error
    except ResponseParserError as error:  # a proxy's or emulator's error page, not AWS's XML
        raise CloudError(f"AWS gave an answer that is not AWS's while {action}.") from error


def _client_error_sentence(action: str, error: Any) -> str:
    code = error_code(error)
    message = str(error.response.get("Error", {}).get("Message", "")).rstrip(".")
    if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
        return f"AWS denied access while {action}: the credentials lack permission ({message})."
    if code in (
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
        "ExpiredToken",
        "InvalidAccessKeyId",
    ):
        return f"AWS rejected the credentials while {action}: {message or code}."
    detail = f"{code}: {message}" if message else code
    return f"AWS refused {action} ({detail})."


def _last_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[-1].rstrip(".")
