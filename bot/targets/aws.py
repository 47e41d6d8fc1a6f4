"""AWS in the region the catalog names, through boto3.

Credentials, and AWS_ENDPOINT_URL (moto, LocalStack, a VPC endpoint), come from boto3's
standard chain. boto3 is synchronous: each call runs in a worker thread (asyncio.to_thread)
with botocore's connect and read timeouts set to the entry's, so a hung endpoint frees the
thread as well as the caller. No retries: the timeout is the whole budget. boto3 is imported
on first use, not with this module: it costs a process about 20 MB that most never need.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from bot.catalog import AwsTarget
from bot.targets.errors import (
    TargetDenied,
    TargetError,
    TargetMisconfigured,
    TargetNotFound,
    TargetTimeout,
    TargetUnavailable,
)

SYSTEM = "aws"
_DENIED = {"AccessDenied", "AccessDeniedException", "UnrecognizedClientException"}
_DENIED |= {"InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException"}
_NOT_FOUND = {"ResourceNotFoundException", "DBInstanceNotFound", "DBInstanceNotFoundFault"}
_NOT_FOUND |= {"ClusterNotFoundException", "ServiceNotFoundException"}


def translate(exc: BaseException) -> TargetError:
    """botocore's errors as TargetErrors (the one place that knows them)."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    if isinstance(exc, TargetError):
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Error"))
        message = f"{code}: {error.get('Message', '')}".strip(": ")
        if code in _DENIED:
            return TargetDenied(SYSTEM, message)
        if code in _NOT_FOUND:
            return TargetNotFound(SYSTEM, message)
        return TargetUnavailable(SYSTEM, message)
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError | TimeoutError):
        return TargetTimeout(SYSTEM, "AWS did not answer in time")
    if isinstance(exc, NoCredentialsError):
        return TargetMisconfigured(SYSTEM, "no AWS credentials found")
    if isinstance(exc, EndpointConnectionError):
        return TargetUnavailable(SYSTEM, "cannot reach the AWS endpoint")
    if isinstance(exc, BotoCoreError):
        return TargetUnavailable(SYSTEM, str(exc))
    return TargetUnavailable(SYSTEM, f"{type(exc).__name__}: {exc}")


class AwsClient:
    """boto3 clients for the entry's region; `call` runs one API call in a thread."""

    def __init__(self, target: AwsTarget) -> None:
        import boto3
        from botocore.config import Config

        self.target = target
        timeout = target.timeout.seconds
        self._config = Config(
            region_name=target.region,
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": 1, "mode": "standard"},
        )
        self._session = boto3.session.Session(region_name=target.region)
        self._clients: dict[str, Any] = {}

    @property
    def timeout(self) -> float:
        return self.target.timeout.seconds

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service, config=self._config)
        return self._clients[service]

    async def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        """`service.operation(**params)` (boto3 names: "ecs", "describe_services")."""

        def run() -> dict[str, Any]:
            method = getattr(self._client(service), operation)
            answer: dict[str, Any] = method(**params)
            return answer

        try:
            # connect + read may each take the timeout; a margin beyond that is a hang.
            async with asyncio.timeout(self.timeout * 2 + 1):
                return await asyncio.to_thread(functools.partial(run))
        except TargetError:
            raise
        except Exception as exc:
            raise translate(exc) from None
