"""A small Kubernetes API server for tests: the subset the kubernetes runtime uses (pods
create/get/list/delete/watch, and pod metrics), over real HTTP with real Kubernetes JSON.

A Kubernetes API server cannot run on this machine; this one speaks the same wire protocol so
the official client is exercised for real. A "kubelet" moves new Pods to Running after a moment.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fixtures import services


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(code: int, reason: str, message: str, name: str) -> JSONResponse:
    return JSONResponse(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "details": {"name": name, "kind": "pods"},
            "code": code,
        },
        status_code=code,
    )


def _matches(pod: dict[str, Any], label_selector: str | None, field_selector: str | None) -> bool:
    labels = pod["metadata"].get("labels", {})
    for term in filter(None, (label_selector or "").split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    for term in filter(None, (field_selector or "").split(",")):
        key, _, value = term.partition("=")
        if key == "metadata.name" and pod["metadata"]["name"] != value:
            return False
    return True


class FakeKubernetes:
    def __init__(self, *, start_delay: float = 0.2) -> None:
        self.port = services.free_port()
        self.start_delay = start_delay
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []  # request bodies, as sent
        self.deletes: list[dict[str, Any]] = []
        self.version = 1
        self._watchers: list[asyncio.Queue[dict[str, Any]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        app = Starlette(
            routes=[
                Route(
                    "/api/v1/namespaces/{ns}/pods", self.pods_collection, methods=["GET", "POST"]
                ),
                Route("/api/v1/namespaces/{ns}/pods/{name}", self.pod, methods=["GET", "DELETE"]),
                Route("/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods/{name}", self.metrics),
            ]
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._server.serve())  # type: ignore[union-attr]
            finally:
                loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not services.port_open("127.0.0.1", self.port):
            if time.monotonic() > deadline:
                raise AssertionError("fake kubernetes did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    # --- "kubelet" ---------------------------------------------------------------------

    def _emit(self, kind: str, pod: dict[str, Any]) -> None:
        self.version += 1
        pod["metadata"]["resourceVersion"] = str(self.version)
        for queue in self._watchers:
            queue.put_nowait({"type": kind, "object": json.loads(json.dumps(pod))})

    def _run(self, key: tuple[str, str]) -> None:
        pod = self.pods.get(key)
        if pod is None or pod["status"]["phase"] != "Pending":
            return
        started = _now()
        pod["status"] = {
            "phase": "Running",
            "startTime": started,
            "podIP": "10.0.0.7",
            "containerStatuses": [
                {
                    "name": "worker",
                    "ready": True,
                    "restartCount": 0,
                    "image": pod["spec"]["containers"][0]["image"],
                    "imageID": "",
                    "containerID": f"containerd://{uuid.uuid4().hex}",
                    "state": {"running": {"startedAt": started}},
                }
            ],
        }
        self._emit("MODIFIED", pod)

    def fail(self, namespace: str, name: str, exit_code: int = 137) -> None:
        """The Pod's container dies (OOM-killed, node lost...), from the test's thread."""

        def do() -> None:
            pod = self.pods[(namespace, name)]
            pod["status"]["phase"] = "Failed"
            pod["status"]["containerStatuses"][0]["state"] = {
                "terminated": {"exitCode": exit_code, "reason": "Error", "finishedAt": _now()}
            }
            self._emit("MODIFIED", pod)

        assert self._loop is not None
        self._loop.call_soon_threadsafe(do)

    # --- the API ---------------------------------------------------------------------------

    async def pods_collection(self, request: Request) -> Response:
        ns = request.path_params["ns"]
        if request.method == "POST":
            body = await request.json()
            self.created.append(json.loads(json.dumps(body)))
            name = body["metadata"]["name"]
            if (ns, name) in self.pods:
                return _status(409, "AlreadyExists", f'pods "{name}" already exists', name)
            body["metadata"].update(
                {
                    "namespace": ns,
                    "uid": str(uuid.uuid4()),
                    "creationTimestamp": _now(),
                }
            )
            body["status"] = {"phase": "Pending", "qosClass": "Burstable"}
            self.pods[(ns, name)] = body
            self._emit("ADDED", body)
            asyncio.get_running_loop().call_later(self.start_delay, self._run, (ns, name))
            return JSONResponse(body, status_code=201)
        labels = request.query_params.get("labelSelector")
        fields = request.query_params.get("fieldSelector")
        selected = [p for (n, _), p in self.pods.items() if n == ns and _matches(p, labels, fields)]
        if request.query_params.get("watch", "").lower() in ("true", "1"):
            timeout = float(request.query_params.get("timeoutSeconds", "30"))
            return StreamingResponse(
                self._watch(selected, labels, fields, timeout), media_type="application/json"
            )
        return JSONResponse(
            {
                "kind": "PodList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": str(self.version)},
                "items": selected,
            }
        )

    async def _watch(
        self, initial: list[dict[str, Any]], labels: str | None, fields: str | None, seconds: float
    ) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._watchers.append(queue)
        try:
            for pod in initial:
                yield (json.dumps({"type": "ADDED", "object": pod}) + "\n").encode()
            deadline = asyncio.get_running_loop().time() + seconds
            while (left := deadline - asyncio.get_running_loop().time()) > 0:
                try:
                    change = await asyncio.wait_for(queue.get(), left)
                except TimeoutError:
                    return
                if _matches(change["object"], labels, fields):
                    yield (json.dumps(change) + "\n").encode()
        finally:
            self._watchers.remove(queue)

    async def pod(self, request: Request) -> Response:
        ns, name = request.path_params["ns"], request.path_params["name"]
        pod = self.pods.get((ns, name))
        if pod is None:
            return _status(404, "NotFound", f'pods "{name}" not found', name)
        if request.method == "DELETE":
            raw = await request.body()
            body = json.loads(raw) if raw else {}
            grace = request.query_params.get("gracePeriodSeconds", body.get("gracePeriodSeconds"))
            self.deletes.append({"name": name, "grace_period_seconds": grace})
            pod["metadata"]["deletionTimestamp"] = _now()
            del self.pods[(ns, name)]
            self._emit("DELETED", pod)
        return JSONResponse(pod)

    async def metrics(self, request: Request) -> Response:
        ns, name = request.path_params["ns"], request.path_params["name"]
        pod = self.pods.get((ns, name))
        if pod is None or pod["status"]["phase"] != "Running":
            return _status(404, "NotFound", f'podmetrics.metrics.k8s.io "{name}" not found', name)
        return JSONResponse(
            {
                "kind": "PodMetrics",
                "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {"name": name, "namespace": ns, "creationTimestamp": _now()},
                "timestamp": _now(),
                "window": "15s",
                "containers": [
                    {"name": "worker", "usage": {"cpu": "250000000n", "memory": "131072Ki"}}
                ],
            }
        )
