"""deploy/ checked against the code, since Docker and Kubernetes cannot run here: every command is a real
``ageguard`` command with real options, every ``AGEGUARD_*`` name a real setting with a valid value, ports
agree, probe paths are the real endpoints (and answer as the probes expect), and the nginx the
multi-instance suite runs is the deployment's nginx (same server block, upstream parameters, command)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from pydantic import BaseModel
from typer.exceptions import TyperException

from ageguard.cli import app as cli_app
from ageguard.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
sys.path.insert(0, str(ROOT / "tests" / "multi"))
import cluster  # noqa: E402  (tests/multi: how the suite starts instances and nginx)

PORT = 8000


# ------------------------------------------------------------------------------------------ loading


def k8s_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def k8s(kind: str, name: str = "ageguard") -> dict[str, Any]:
    found = [d for d in k8s_docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return data


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def exec_form(args: str) -> list[str]:
    value = yaml.safe_load(args)
    assert isinstance(value, list), f"exec form expected: {args}"
    return [str(v) for v in value]


def deployment_container() -> dict[str, Any]:
    containers = k8s("Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def job_container() -> dict[str, Any]:
    container: dict[str, Any] = k8s("Job", "ageguard-migrate")["spec"]["template"]["spec"]["containers"][0]
    return container


def ageguard_commands() -> Iterator[tuple[str, list[str]]]:
    """Every ageguard command line the deployment runs, as (where, argv without 'ageguard')."""
    yield "k8s Deployment", deployment_container()["command"][1:]
    yield "k8s Job", job_container()["command"][1:]
    entrypoint = cmd = None
    for word, rest in dockerfile_instructions():
        if word == "ENTRYPOINT":
            entrypoint = exec_form(rest)
        if word == "CMD":
            cmd = exec_form(rest)
    assert entrypoint == ["ageguard"] and cmd is not None
    yield "Dockerfile CMD", cmd
    for name, service in compose()["services"].items():
        if service.get("image", "").startswith("ageguard"):
            yield f"compose {name}", list(service["command"])
    for container in (deployment_container(), job_container()):
        assert container["command"][0] == "ageguard"


def serve_commands() -> list[tuple[str, list[str]]]:
    return [(where, argv) for where, argv in ageguard_commands() if argv[0] == "serve"]


def option_value(argv: list[str], option: str) -> str:
    return argv[argv.index(option) + 1]


# ------------------------------------------------------------------------------------------ commands


class NotACommand(Exception):
    pass


def parse_cli(argv: list[str]) -> list[str]:
    """Parse ``argv`` with the real CLI, running nothing: the path of command names; raises NotACommand
    for an unknown command or option (typer's own parser says why)."""
    command: Any = typer.main.get_command(cli_app)
    ctx = typer.Context(command, info_name="ageguard")
    args = list(argv)
    path: list[str] = []
    while hasattr(command, "list_commands"):  # a group: the next word names a command
        if not args or command.get_command(ctx, args[0]) is None:
            raise NotACommand(f"no command {args[:1]} under {path}")
        path.append(args.pop(0))
        command = command.get_command(ctx, path[-1])
        ctx = typer.Context(command, info_name=path[-1], parent=ctx)
    try:
        command.make_context(path[-1], args, parent=ctx.parent, resilient_parsing=False)
    except TyperException as exc:
        raise NotACommand(str(exc)) from exc
    return path


def test_every_command_the_deployment_runs_is_a_real_cli_command() -> None:
    seen = set()
    for where, argv in ageguard_commands():
        try:
            seen.add(tuple(parse_cli(argv)))
        except NotACommand as exc:
            pytest.fail(f"{where}: ageguard {shlex.join(argv)}: {exc}")
    assert {("serve",), ("migrate",)} <= seen
    for wrong in (["serve", "--no-such-option", "1"], ["no-such-command"], ["app", "nope"]):
        with pytest.raises(NotACommand):  # the check itself refuses what the CLI refuses
            parse_cli(wrong)


def test_the_migration_job_and_compose_migrate_run_migrate_only() -> None:
    assert job_container()["command"] == ["ageguard", "migrate"]
    assert compose()["services"]["migrate"]["command"] == ["migrate"]
    assert k8s("Job", "ageguard-migrate")["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_instances_run_the_suites_serve_command() -> None:
    """tests/multi starts instances with the options the deployment uses (only the address differs)."""
    suite = cluster.serve_args(1234)
    suite_options = [a for a in suite if a.startswith("--")]
    assert tuple(suite_options) == cluster.SERVE_OPTIONS
    for where, argv in serve_commands():
        assert [a for a in argv if a.startswith("--")] == suite_options, where
        assert option_value(argv, "--host") == "0.0.0.0", where
        assert option_value(argv, "--port") == str(PORT), where
        assert option_value(argv, "--workers") == option_value(suite, "--workers"), where


# ------------------------------------------------------------------------------------------ settings


def setting_exists(name: str) -> bool:
    assert name.startswith("AGEGUARD_"), name
    model: type[BaseModel] = Settings
    parts = name.removeprefix("AGEGUARD_").lower().split("__")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if i < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def deployment_env() -> dict[str, dict[str, str]]:
    """Every AGEGUARD_* variable the deployment sets, per place, with its value (a placeholder for refs)."""
    places: dict[str, dict[str, str]] = {}
    places["k8s ConfigMap"] = dict(k8s("ConfigMap")["data"])
    places["k8s Secret"] = dict(k8s("Secret", "ageguard-db")["stringData"])
    for where, container in (("k8s Deployment", deployment_container()), ("k8s Job", job_container())):
        places[where] = {e["name"]: str(e.get("value", "ref")) for e in container.get("env", [])}
        refs = {r.get("configMapRef", r.get("secretRef", {})).get("name") for r in container["envFrom"]}
        assert refs == {"ageguard", "ageguard-db"}, where
    for name, service in compose()["services"].items():
        if service.get("image", "").startswith("ageguard"):
            places[f"compose {name}"] = {k: str(v) for k, v in service["environment"].items()}
    dockerfile: dict[str, str] = {}
    for word, rest in dockerfile_instructions():
        if word == "ENV":
            dockerfile.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    places["Dockerfile"] = dockerfile
    return places


def test_every_ageguard_variable_is_a_real_setting_with_a_valid_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert not setting_exists("AGEGUARD_NO_SUCH_SETTING") and not setting_exists("AGEGUARD_CAPTURE__NOPE")
    names = set()
    for where, env in deployment_env().items():
        ours = {k: v for k, v in env.items() if k.startswith("AGEGUARD_")}
        for name in ours:
            assert setting_exists(name), f"{where}: {name} is not a setting in src/ageguard/settings.py"
        names |= set(ours)
        for name in list(os.environ):
            if name.startswith("AGEGUARD_"):
                monkeypatch.delenv(name)
        for name, value in ours.items():
            if value != "ref":
                monkeypatch.setenv(name, value)
        Settings()  # every value parses as its setting's type
    assert {"AGEGUARD_DATABASE_URL", "AGEGUARD_INSTANCE_NAME", "AGEGUARD_SHUTDOWN_GRACE_S"} <= names


def test_the_database_url_names_the_driver_the_image_has() -> None:
    urls = [deployment_env()["k8s Secret"]["AGEGUARD_DATABASE_URL"]]
    urls += [
        env["AGEGUARD_DATABASE_URL"] for where, env in deployment_env().items() if where.startswith("compose")
    ]
    for url in urls:
        assert url.startswith("postgresql+psycopg://") and "connect_timeout=" in url, url


# ------------------------------------------------------------------------------------------ ports, probes


def test_ports_agree() -> None:
    container = deployment_container()
    (port,) = container["ports"]
    assert port["containerPort"] == PORT and port["name"] == "http"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == "http"
    service = k8s("Service")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    annotations = k8s("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(PORT) and annotations["prometheus.io/path"] == "/metrics"
    assert ("EXPOSE", str(PORT)) in dockerfile_instructions()
    upstreams = re.findall(r"server (ageguard-\d):(\d+)", (DEPLOY / "nginx" / "nginx.conf").read_text())
    services = compose()["services"]
    assert upstreams and all(name in services and int(p) == PORT for name, p in upstreams)
    ingress = k8s("Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert ingress == {"name": "ageguard", "port": {"name": "http"}}


def test_labels_select_the_pods() -> None:
    pod_labels = k8s("Deployment")["spec"]["template"]["metadata"]["labels"]
    for selector in (
        k8s("Service")["spec"]["selector"],
        k8s("Deployment")["spec"]["selector"]["matchLabels"],
        k8s("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= pod_labels.items()
    target = k8s("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "ageguard")


def probe_paths() -> dict[str, str]:
    container = deployment_container()
    paths = {
        probe: container[probe]["httpGet"]["path"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    for word, rest in dockerfile_instructions():
        if word == "HEALTHCHECK":
            paths["Dockerfile HEALTHCHECK"] = re.findall(r"http://127\.0\.0\.1:8000(/\w+)", rest)[0]
    for name, service in compose()["services"].items():
        if "healthcheck" in service and service.get("image", "").startswith("ageguard"):
            test = " ".join(service["healthcheck"]["test"])
            paths[f"compose {name}"] = re.findall(r"http://127\.0\.0\.1:8000(/\w+)", test)[0]
    return paths


def test_probes_are_the_real_endpoints_and_answer_as_the_probes_expect(tmp_path: Path) -> None:
    """Liveness on /health (never the database), readiness on /ready (the database): on the real app."""
    from fastapi.testclient import TestClient
    from tests_api_helpers import FakePipeline

    from ageguard.api.app import create_app
    from ageguard.hub import Hub, StoreUnavailable

    paths = probe_paths()
    assert paths["livenessProbe"] == paths["startupProbe"] == "/health"
    assert paths["readinessProbe"] == "/ready"
    assert paths["Dockerfile HEALTHCHECK"] == "/health"
    assert {p for k, p in paths.items() if k.startswith("compose")} == {"/ready"}  # nginx waits for ready
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'hub.db'}")
    hub = Hub(settings.resolved_database_url)
    with TestClient(create_app(settings, FakePipeline(), hub)) as client:
        for path in set(paths.values()):
            assert client.get(path).status_code == 200, path

        def down() -> None:
            raise StoreUnavailable("down")

        hub.ping = down  # type: ignore[method-assign]
        assert client.get(paths["livenessProbe"]).status_code == 200  # a database outage restarts nothing
        assert client.get(paths["readinessProbe"]).status_code == 503  # but takes the pod out of the Service
    hub.close()


def test_shutdown_fits_the_grace_period_and_readiness_waits_longer_than_ready() -> None:
    spec = k8s("Deployment")["spec"]["template"]["spec"]
    container = deployment_container()
    config = k8s("ConfigMap")["data"]
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pause + int(config["AGEGUARD_SHUTDOWN_GRACE_S"]) < spec["terminationGracePeriodSeconds"]
    assert container["readinessProbe"]["timeoutSeconds"] > float(config["AGEGUARD_READY_TIMEOUT_S"])
    grace = float(compose()["services"]["ageguard-1"]["stop_grace_period"].rstrip("s"))
    assert int(compose()["x-ageguard-env"]["AGEGUARD_SHUTDOWN_GRACE_S"]) < grace


def test_non_root_read_only_and_models_built_in() -> None:
    instructions = dockerfile_instructions()
    users = [rest for word, rest in instructions if word == "USER"]
    assert users == ["10001:10001"]
    runs = " ".join(rest for word, rest in instructions if word == "RUN")
    assert "ageguard models install" in runs  # the project's own pinned, hash-checked install
    assert "pip install --no-cache-dir /build" in runs
    for where, spec in (
        ("Deployment", k8s("Deployment")["spec"]["template"]["spec"]),
        ("Job", k8s("Job", "ageguard-migrate")["spec"]["template"]["spec"]),
    ):
        assert (
            spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == 10001
        )
        for container in spec["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, where
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            volumes = {v["name"]: v for v in spec["volumes"]}
            for path in ("/tmp", "/var/lib/ageguard"):  # the only writable places, both in memory
                assert volumes[mounts[path]]["emptyDir"]["medium"] == "Memory", (where, path)
    for name, service in compose()["services"].items():
        if service.get("image", "").startswith("ageguard"):
            assert service["read_only"] is True and set(service["tmpfs"]) == {"/tmp", "/var/lib/ageguard"}, (
                name
            )


# ------------------------------------------------------------------------------------------ nginx


def nginx_directives(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.endswith(";"):
            word, _, value = line[:-1].partition(" ")
            out.setdefault(word, value.strip())
    return out


def test_the_suites_nginx_is_the_deployments_nginx(tmp_path: Path) -> None:
    shared = DEPLOY / "nginx" / "ageguard-server.conf"
    assert shared == cluster.NGINX_SERVER_CONF
    suite_conf = cluster.nginx_config(tmp_path, 8080, [1, 2])
    assert f"include {shared};" in suite_conf
    compose_conf = (DEPLOY / "nginx" / "nginx.conf").read_text()
    assert "include /etc/nginx/ageguard-server.conf;" in compose_conf
    nginx = compose()["services"]["nginx"]
    assert "./nginx/ageguard-server.conf:/etc/nginx/ageguard-server.conf:ro" in nginx["volumes"]
    assert "./nginx/nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    assert nginx["command"] == ["nginx", *cluster.NGINX_ARGS]
    # The same upstream parameters (failure detection) and keep-alive pool as the suite.
    params = re.findall(r"server ageguard-\d:\d+ (.*);", compose_conf)
    assert params and set(params) == {cluster.UPSTREAM_PARAMS}
    assert re.findall(r"server 127\.0\.0\.1:\d+ (.*);", suite_conf) == [cluster.UPSTREAM_PARAMS] * 2
    assert f"keepalive {cluster.UPSTREAM_KEEPALIVE};" in compose_conf
    assert f"keepalive {cluster.UPSTREAM_KEEPALIVE};" in suite_conf


def test_the_ingress_carries_the_balancer_settings() -> None:
    conf = nginx_directives((DEPLOY / "nginx" / "ageguard-server.conf").read_text())
    annotations = k8s("Ingress")["metadata"]["annotations"]

    def a(name: str) -> str:
        return str(annotations[f"nginx.ingress.kubernetes.io/{name}"])

    assert a("proxy-body-size") == conf["client_max_body_size"]
    assert a("client-body-buffer-size") == conf["client_body_buffer_size"] == conf["client_max_body_size"]
    assert a("proxy-next-upstream") == conf["proxy_next_upstream"] == "error timeout"  # never non_idempotent
    assert a("proxy-next-upstream-tries") == conf["proxy_next_upstream_tries"]
    assert a("proxy-next-upstream-timeout") + "s" == conf["proxy_next_upstream_timeout"]
    assert a("proxy-connect-timeout") + "s" == conf["proxy_connect_timeout"]
    assert a("proxy-read-timeout") + "s" == conf["proxy_read_timeout"]
    # Bodies stay in memory: the buffer holds the largest body nginx accepts.
    assert conf["client_body_in_file_only"] == "off" and conf["proxy_max_temp_file_size"] == "0"


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (.ci/run installs it)")
def test_the_compose_nginx_conf_is_valid_nginx(tmp_path: Path) -> None:
    """`nginx -t` on deploy/nginx/nginx.conf, with the compose hostnames and mount path made local."""
    text = (DEPLOY / "nginx" / "nginx.conf").read_text()
    text = re.sub(r"server ageguard-(\d):8000", r"server 127.0.0.1:1\1", text)
    text = text.replace("/tmp/", f"{tmp_path}/")  # first: the checkout itself may live under /tmp
    text = text.replace("/etc/nginx/ageguard-server.conf", str(DEPLOY / "nginx" / "ageguard-server.conf"))
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    run = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
