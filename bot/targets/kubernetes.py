"""The Kubernetes namespace named by the catalog, through the official `kubernetes` client.

The client is synchronous, so every call runs in a worker thread (asyncio.to_thread) with the
entry's timeout passed to urllib3 as well (`_request_timeout`): a hung API server frees the
thread too, not only the caller. We chose the sync client over kubernetes-asyncio because it
is already a dependency, its API is the documented one, and the calls are few and short.
Configuration comes from KUBECONFIG (or ~/.kube/config) and the entry's `context`, else from
the in-cluster service account.

The client library (and urllib3) is imported on first use, not with this module: it costs a
process about 60 MB, and most processes never reach a cluster.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bot.catalog import KubernetesTarget
from bot.targets.errors import (
    TargetDenied,
    TargetError,
    TargetMisconfigured,
    TargetNotFound,
    TargetTimeout,
    TargetUnavailable,
)

if TYPE_CHECKING:
    from kubernetes import client as k8s

SYSTEM = "kubernetes"
T = TypeVar("T")
# The annotation a deployment and its replica sets carry their rollout's number in.
REVISION = "deployment.kubernetes.io/revision"


def revision_of(obj: Any) -> int:
    """A deployment's (or replica set's) revision; 0 when it has none readable."""
    annotations = obj.metadata.annotations or {}
    try:
        return int(annotations.get(REVISION, "0") or 0)
    except ValueError:
        return 0


def _client_module() -> Any:
    from kubernetes import client

    return client


def translate(exc: BaseException) -> TargetError:
    """Errors of the kubernetes client and urllib3 as TargetErrors (only here)."""
    import urllib3
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException

    if isinstance(exc, TargetError):
        return exc
    if isinstance(exc, ApiException):
        reason = f"HTTP {exc.status} {exc.reason or ''}".strip()
        if exc.status in (401, 403):
            return TargetDenied(SYSTEM, reason)
        if exc.status == 404:
            return TargetNotFound(SYSTEM, reason)
        return TargetUnavailable(SYSTEM, reason)
    if isinstance(exc, ConfigException):
        return TargetMisconfigured(SYSTEM, str(exc))
    if isinstance(exc, TimeoutError | urllib3.exceptions.TimeoutError):
        return TargetTimeout(SYSTEM, "the API server did not answer in time")
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and isinstance(
        exc.reason, urllib3.exceptions.TimeoutError
    ):
        return TargetTimeout(SYSTEM, "the API server did not answer in time")
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return TargetUnavailable(SYSTEM, f"cannot reach the API server ({type(exc).__name__})")
    return TargetUnavailable(SYSTEM, f"{type(exc).__name__}: {exc}")


def _load_configuration(target: KubernetesTarget) -> k8s.Configuration:
    from kubernetes import config as k8s_config

    configuration = _client_module().Configuration()
    kubeconfig = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    first_file = kubeconfig.split(os.pathsep)[0]
    if Path(first_file).is_file():
        k8s_config.load_kube_config(
            config_file=first_file, context=target.context, client_configuration=configuration
        )
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        k8s_config.load_incluster_config(client_configuration=configuration)
    else:
        raise TargetMisconfigured(
            SYSTEM, "no kubeconfig (KUBECONFIG or ~/.kube/config) and not running in a cluster"
        )
    configuration.retries = False  # one attempt per call: the timeout is ours to spend
    return configuration


class KubernetesClient:
    """Calls into the catalogued namespace, each in a thread with the entry's timeout."""

    def __init__(self, target: KubernetesTarget) -> None:
        self.target = target
        self._api: k8s.ApiClient | None = None

    @property
    def namespace(self) -> str:
        return self.target.namespace

    @property
    def timeout(self) -> float:
        return self.target.timeout.seconds

    async def _api_client(self) -> k8s.ApiClient:
        from kubernetes.config.config_exception import ConfigException

        if self._api is None:
            try:
                configuration = await asyncio.to_thread(_load_configuration, self.target)
            except (ConfigException, OSError, ValueError) as exc:
                raise translate(ConfigException(str(exc))) from None
            self._api = _client_module().ApiClient(configuration)
        return self._api

    async def core(self) -> k8s.CoreV1Api:
        return _client_module().CoreV1Api(await self._api_client())

    async def apps(self) -> k8s.AppsV1Api:
        return _client_module().AppsV1Api(await self._api_client())

    async def custom(self) -> k8s.CustomObjectsApi:
        return _client_module().CustomObjectsApi(await self._api_client())

    async def call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one client method in a thread, bounded by the timeout on both sides."""
        kwargs.setdefault("_request_timeout", self.timeout)
        try:
            async with asyncio.timeout(self.timeout + 1):
                return await asyncio.to_thread(method, *args, **kwargs)
        except TargetError:
            raise
        except Exception as exc:
            raise translate(exc) from None

    async def to_dict(self, obj: Any) -> dict[str, Any]:
        """A client model object as the API's JSON (camelCase keys), e.g. to patch it back."""
        body: dict[str, Any] = (await self._api_client()).sanitize_for_serialization(obj)
        return body

    async def close(self) -> None:
        if self._api is not None:
            api, self._api = self._api, None
            await asyncio.to_thread(api.close)
