"""The kind overlay's pod specs, run: every kdruid container of the rendered manifests is started
as a process with the args, environment (ConfigMap, Secret, Downward API, env), volumes and
working directory its pod would give it, against the Kubernetes API-server double; then its
startup, liveness and readiness probe paths are called on it, on the probes' own ports.

There is no kubelet here, so a few things a pod gets from Kubernetes are stood in for, and only
these (each is asserted or documented below):

* the API server: in a pod, the in-cluster ServiceAccount; here ``KUBECONFIG`` names the double;
* ``status.podIP`` is 127.0.0.1 and ``metadata.name`` a pod created in the double from the
  workload's template labels, so each node patches its own pod as it would in the cluster;
* pods have their own IPs, these processes share one: each gets a free port through
  ``druid_plaintextPort``, and the probes' container port is mapped to it;
* every volumeMount is a directory under a per-pod root that is the working directory (the
  image's WORKDIR is ``/``), and paths in the environment under a mountPath are moved with it;
  any other absolute path would be on the read-only root file system, which the test refuses;
* the namespace's PostgreSQL (``postgres:5432``) is a SQLite file: the metadata store is not
  what these pods specify, discovery through the API server is. S3 deep storage is left as
  rendered; nothing in start-up or the probes touches it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from services.localkafka import free_port
from tests.deploy.kustomize import Resource, pod_spec
from tests.deploy.manifests import (
    container_environ,
    container_port,
    kdruid_role_containers,
    rendered,
)
from tests.support.k8s_api import K8sApiDouble

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

#: The image's ENV (docker/Dockerfile) that matters to the process.
IMAGE_ENV = {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")
WITHIN = 90.0


@dataclass
class Pod:
    workload: Resource
    container: dict[str, Any]
    role: str
    name: str
    root: Path
    port: int
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None

    def probe_url(self, probe: str) -> str:
        get = self.container[probe]["httpGet"]
        assert container_port(self.container, get["port"]) == self.container_port
        return f"http://127.0.0.1:{self.port}{get['path']}"

    @property
    def container_port(self) -> int:
        (port,) = self.container["ports"]
        return int(port["containerPort"])

    def log_tail(self) -> str:
        return "\n".join((self.root / "pod.log").read_text(errors="replace").splitlines()[-30:])


def mounts(container: dict[str, Any]) -> list[str]:
    return sorted((m["mountPath"] for m in container.get("volumeMounts", [])), key=len)


def under(path: str, mount: str) -> bool:
    return path == mount or path.startswith(mount.rstrip("/") + "/")


def absolute_paths(value: str) -> Iterator[str]:
    """Absolute file paths in an environment value (plain, or as JSON ``"path"`` strings)."""
    for token in value.replace('"', " ").replace(",", " ").replace("[", " ").split():
        if token.startswith("/"):
            yield token


def pod_environment(pod: Pod, kubeconfig: str, metadata: Path) -> dict[str, str]:
    namespace = pod.workload["metadata"]["namespace"]
    env = container_environ(rendered("kind"), pod.container, namespace)
    env["POD_NAME"] = pod.name  # metadata.name (the double's FIELD_VALUES name is generic)
    assert env["DRUID_HOST"] == "10.244.0.7"  # status.podIP, as manifests.FIELD_VALUES gives it
    env["DRUID_HOST"] = "127.0.0.1"
    assert env["POD_NAMESPACE"] == namespace
    # Every absolute path the pod is told about must be on one of its volumes.
    container_mounts = mounts(pod.container)
    for key, value in list(env.items()):
        for path in absolute_paths(value):
            if "://" in value:
                continue
            mount = next((m for m in reversed(container_mounts) if under(path, m)), None)
            assert mount is not None, f"{pod.role}: {key} points at {path}, not on a volume"
            env[key] = env[key].replace(path, str(pod.root) + path)
    assert env["druid_metadata_storage_connector_connectURI"].startswith("jdbc:postgresql://")
    env["druid_metadata_storage_type"] = "sqlite"
    env["druid_metadata_storage_connector_connectURI"] = str(metadata)
    env["druid_plaintextPort"] = str(pod.port)
    env.update(IMAGE_ENV)
    env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
    env["HOME"] = str(pod.root / "tmp")
    env["KUBECONFIG"] = kubeconfig
    return env


def make_pods(tmp_path: Path) -> list[Pod]:
    pods = []
    for workload, container, role in kdruid_role_containers(rendered("kind")):
        name = f"{workload['metadata']['name']}-0"
        root = tmp_path / name
        for mount in mounts(container):
            (root / mount.lstrip("/")).mkdir(parents=True, exist_ok=True)
        pods.append(Pod(workload, container, role, name, root, free_port()))
    assert sorted(p.role for p in pods) == sorted(
        ["coordinator", "overlord", "broker", "historical", "peon"]
    )
    return pods


async def wait_ok(http: httpx.AsyncClient, pod: Pod, probe: str) -> None:
    url = pod.probe_url(probe)
    deadline = asyncio.get_running_loop().time() + WITHIN
    last = "no answer"
    while asyncio.get_running_loop().time() < deadline:
        assert pod.process is not None
        if pod.process.poll() is not None:
            pytest.fail(f"{pod.role} exited with {pod.process.returncode}:\n{pod.log_tail()}")
        try:
            resp = await http.get(url)
            if resp.status_code == 200:
                return
            last = f"{resp.status_code} {resp.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        await asyncio.sleep(0.5)
    pytest.fail(f"{pod.role} {probe} {url}: {last}\n{pod.log_tail()}")


async def test_every_pod_spec_starts_and_passes_its_probes(tmp_path: Path) -> None:
    pods = make_pods(tmp_path)
    metadata = tmp_path / "metadata.db"
    async with K8sApiDouble() as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        for pod in pods:
            template = pod.workload["spec"]["template"]["metadata"]
            namespace = pod.workload["metadata"]["namespace"]
            api.add_pod(namespace, pod.name, labels=dict(template["labels"]), ready=False)
            pod.env = pod_environment(pod, kubeconfig, metadata)
        try:
            for pod in pods:
                start(pod)
            async with httpx.AsyncClient(timeout=5.0) as http:
                for probe in PROBES:
                    await asyncio.gather(*(wait_ok(http, pod, probe) for pod in pods))
            for pod in pods:
                # Announced through the API server: its own pod carries the role's label.
                labels = api.pod(pod.workload["metadata"]["namespace"], pod.name)["metadata"]
                assert any(pod.role in k or pod.role in v for k, v in labels["labels"].items())
                # Nothing was written outside the pod's volumes (the root file system is
                # read-only): the working directory holds only the mount points and our log.
                top = {p.name for p in pod.root.iterdir()}
                expected = {m.lstrip("/").split("/")[0] for m in mounts(pod.container)}
                assert top <= expected | {"pod.log"}, (pod.role, top)
        finally:
            # In a thread: the double runs on this loop and stopping pods unannounce through it.
            await asyncio.to_thread(stop, pods)


def start(pod: Pod) -> None:
    assert "command" not in pod.container  # the image's ENTRYPOINT: kdruid
    argv = [sys.executable, "-m", "services.cli", *pod.container["args"]]
    pod.log = (pod.root / "pod.log").open("wb")
    pod.process = subprocess.Popen(
        argv, cwd=pod.root, env=pod.env, stdout=pod.log, stderr=subprocess.STDOUT
    )


def stop(pods: list[Pod], grace: float = 30.0) -> None:
    """SIGTERM every pod at once, SIGKILL what is left after the pods' default grace period
    (terminationGracePeriodSeconds, 30 s), as the kubelet does."""
    running = [p for p in pods if p.process is not None and p.process.poll() is None]
    for pod in running:
        assert pod.process is not None
        pod.process.terminate()
    deadline = time.monotonic() + grace
    for pod in running:
        assert pod.process is not None
        try:
            pod.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pod.process.kill()
            pod.process.wait()
    for pod in pods:
        if pod.log is not None:
            pod.log.close()


def test_every_kdruid_container_has_the_three_probes_on_its_port() -> None:
    for workload, container, role in kdruid_role_containers(rendered("kind")):
        assert pod_spec(workload) is not None
        for probe in PROBES:
            get = container[probe]["httpGet"]
            assert container_port(container, get["port"]) == container["ports"][0]["containerPort"]
            assert get["path"].startswith("/"), (role, probe)


def test_kind_sample_feed_reaches_the_overlord_service_and_kafka() -> None:
    resources = rendered("kind")
    feed = next(r for r in resources if r["metadata"]["name"] == "sample-feed")
    spec = pod_spec(feed)
    assert spec is not None
    (container,) = spec["containers"]
    assert container["image"] == "kdruid:dev"
    assert container["command"] == ["python", "-m", "services.sample_feed"]
    args = container["args"]
    overlord = httpx.URL(args[args.index("--overlord") + 1])
    kafka_host, kafka_port = args[args.index("--kafka") + 1].split(":")
    services = {r["metadata"]["name"]: r for r in resources if r["kind"] == "Service"}
    ports = {int(p["port"]) for p in services[overlord.host]["spec"]["ports"]}
    assert overlord.port in ports
    assert int(kafka_port) in {int(p["port"]) for p in services[kafka_host]["spec"]["ports"]}
    kafka = next(
        r for r in resources if r["kind"] == "Deployment" and r["metadata"]["name"] == kafka_host
    )
    kafka_spec = pod_spec(kafka)
    assert kafka_spec is not None
    advertised = {e["name"]: e.get("value") for e in kafka_spec["containers"][0]["env"]}[
        "KAFKA_ADVERTISED_LISTENERS"
    ]
    assert f"PLAINTEXT://{kafka_host}:{kafka_port}" in advertised.split(",")
    # The image's own user, and nothing to write: the root file system stays read-only.
    assert spec["securityContext"]["runAsUser"] == 1000
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
