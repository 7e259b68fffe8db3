"""The infra/ files parse and keep their promises (least privilege, no secrets, one stack)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"


def test_iam_policy_is_least_privilege():
    policy = json.loads((INFRA / "iam/bolt-bucket-policy.json").read_text())
    actions = [a for s in policy["Statement"] for a in s["Action"]]
    resources = [
        r
        for s in policy["Statement"]
        for r in [s["Resource"]]
        for r in (r if isinstance(r, list) else [r])
    ]
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])
    assert not [a for a in actions if a.endswith("*")]  # no wildcard actions
    assert "s3:DeleteObject" not in actions and "s3:DeleteBucket" not in actions
    assert not [r for r in resources if r in ("*", "arn:aws:s3:::*")]


def test_compose_stack_has_server_store_and_worker_without_baked_secrets():
    compose = yaml.safe_load((INFRA / "compose/docker-compose.yaml").read_text())
    assert {"postgres", "prefect-server", "minio", "worker"} <= set(compose["services"])
    worker = compose["services"]["worker"]
    assert worker["environment"]["PREFECT_API_URL"].startswith("http://prefect-server:4200")
    text = (INFRA / "compose/docker-compose.yaml").read_text()
    # Every credential is an environment variable with a local-only fallback.
    for value in re.findall(
        r"^\s*\w*(?:PASSWORD|SECRET_ACCESS_KEY|ROOT_USER):\s*(\S+)", text, re.MULTILINE
    ):
        assert value.startswith("${"), value


def test_kubernetes_worker_files_parse_and_bind_only_a_namespace():
    docs = list(yaml.safe_load_all((INFRA / "kubernetes/worker/rbac.yaml").read_text()))
    kinds = [d["kind"] for d in docs]
    assert "ClusterRole" not in kinds and "ClusterRoleBinding" not in kinds
    assert {"ServiceAccount", "Role", "RoleBinding", "Deployment"} <= set(kinds)
    values = yaml.safe_load((INFRA / "kubernetes/worker/values.yaml").read_text())
    assert values["worker"]["config"]["workPool"] == "bolt-k8s-gpu"


def test_prefect_yaml_pools_and_build_step_exist():
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    pools = {d["work_pool"]["name"] for d in spec["deployments"]}
    assert pools == {"bolt-process", "bolt-k8s-gpu", "bolt-docker"}
    for deployment in spec["deployments"]:
        for step in deployment.get("build") or []:
            script = step["prefect.deployments.steps.run_shell_script"]["script"]
            assert (REPO / script.split()[1]).exists()
    for dockerfile in ("gpu.Dockerfile", "cpu.Dockerfile"):
        assert "USER bolt" in (INFRA / "docker" / dockerfile).read_text()  # not root at run time
