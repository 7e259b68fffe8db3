"""The Kubernetes launcher: a ConfigMap + headless Service + Indexed Job rendered from
``infra/kubernetes/train-job.yaml.j2``, submitted through the Kubernetes API client
(``pip install kubernetes``, the ``k8s`` extra), pod 0's log streamed, the Job's status
polled until it succeeds or fails.

An Indexed Job needs no operator: pod ``<job>-<i>`` runs node rank ``i`` and pod 0 is
reachable as ``<job>-0.<job>`` through the headless Service.
"""

from __future__ import annotations

import json
import time
from collections import deque
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bolt.config import PipelineConfig
from bolt.train.deepspeed import INFRA
from bolt.train.job import (
    MASTER_PORT,
    LaunchError,
    LogSink,
    TrainJob,
    config_yaml,
    deepspeed_json,
    node_command,
    shell_line,
)

TEMPLATE = "train-job.yaml.j2"


def render(cfg: PipelineConfig, job: TrainJob) -> str:
    """The ConfigMap, headless Service and Indexed Job, as one multi-document YAML."""
    c = cfg.compute
    master = f"{job.name}-0.{job.name}"
    command = node_command(
        cfg,
        job,
        "/etc/bolt/config.yaml",
        "/etc/bolt/deepspeed.json",
        "$JOB_COMPLETION_INDEX",
        master,
        c.workdir,
    )
    command[0] = "python" if command[0].endswith("python") else command[0]
    env = Environment(
        loader=FileSystemLoader(INFRA / "kubernetes"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template(TEMPLATE).render(
        name=job.name,
        namespace=c.namespace,
        labels={
            "app.kubernetes.io/name": "bolt",
            "bolt/stage": job.stage,
            "bolt/run": job.run_name,
        },
        config_yaml=config_yaml(cfg),
        deepspeed_json=json.dumps(deepspeed_json(cfg, job), indent=2),
        nodes=c.nodes,
        gpus_per_node=c.gpus_per_node,
        image=c.image,
        workdir=c.workdir,
        service_account=c.service_account,
        deadline_seconds=int(c.time_limit_hours * 3600),
        master_addr=master,
        master_port=MASTER_PORT,
        command=shell_line(command),
    )


def kubernetes_api():
    """The BatchV1 and CoreV1 clients from the local kubeconfig or the in-cluster account."""
    try:
        from kubernetes import client, config
    except ImportError as e:
        raise LaunchError(
            "compute.launcher is kubernetes but the Kubernetes client is not installed: "
            "pip install 'bolt-pipeline[k8s]'"
        ) from e
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient(), client.BatchV1Api(), client.CoreV1Api()


def submit(api_client: Any, batch: Any, documents: list[dict], namespace: str, name: str) -> None:
    """Create the objects, replacing a previous attempt's (a relaunch reuses the name)."""
    from kubernetes import utils
    from kubernetes.client.exceptions import ApiException

    try:
        batch.delete_namespaced_job(name, namespace, propagation_policy="Foreground")
        while True:  # the old pods must be gone before pod 0's name is reused
            batch.read_namespaced_job(name, namespace)
            time.sleep(2)
    except ApiException as e:
        if e.status != 404:
            raise
    for doc in documents:
        try:
            utils.create_from_dict(api_client, doc, namespace=namespace)
        except utils.FailToCreateError as e:
            if not all(getattr(x, "status", None) == 409 for x in e.api_exceptions):
                raise  # 409: the ConfigMap/Service of an earlier attempt, still valid


def job_outcome(status: Any, completions: int) -> str | None:
    """'succeeded', 'failed: <reason>' or None while running (from a V1JobStatus)."""
    if (status.succeeded or 0) >= completions:
        return "succeeded"
    for condition in status.conditions or []:
        if condition.type == "Failed" and condition.status == "True":
            return f"failed: {condition.reason}: {condition.message}"
    return None


def run(cfg: PipelineConfig, job: TrainJob, scratch: Path, on_line: LogSink) -> None:
    """Submit, stream pod 0's log, wait; the files travel in the ConfigMap, not ``scratch``."""
    from kubernetes import watch

    api_client, batch, core = kubernetes_api()
    ns, name = cfg.compute.namespace, job.name
    submit(api_client, batch, list(yaml.safe_load_all(render(cfg, job))), ns, name)
    on_line(f"launch: kubernetes job {ns}/{name} ({cfg.compute.nodes} pods)")
    tail: deque[str] = deque(maxlen=40)
    streamed = False
    while (
        outcome := job_outcome(batch.read_namespaced_job_status(name, ns).status, cfg.compute.nodes)
    ) is None:
        pods = core.list_namespaced_pod(
            ns, label_selector=f"job-name={name},batch.kubernetes.io/job-completion-index=0"
        ).items
        if not streamed and pods and pods[0].status.phase in ("Running", "Succeeded", "Failed"):
            streamed = True  # follow pod 0 (world rank 0 prints the progress lines) to its end
            for line in watch.Watch().stream(
                core.read_namespaced_pod_log, pods[0].metadata.name, ns, follow=True
            ):
                tail.append(line)
                on_line(line)
            continue
        time.sleep(cfg.compute.poll_seconds)
    if outcome != "succeeded":
        raise LaunchError(f"kubernetes job {ns}/{name} {outcome}:\n" + "\n".join(tail))
