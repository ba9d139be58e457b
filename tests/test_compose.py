"""docker-compose.yml against the real entry points (Docker itself cannot run here).

Every command must name a module that exists and whose own argument parser accepts the flags;
every client must reach Kafka through the broker's internal listener; services must start in
order (broker healthy -> topics created -> worker, simulator, dashboard).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
APP_SERVICES = ("topics", "worker", "simulator", "dashboard")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def gpu() -> dict:
    return yaml.safe_load((REPO / "docker-compose.gpu.yml").read_text())


@pytest.fixture(scope="module")
def external() -> dict:
    return yaml.safe_load((REPO / "docker-compose.external.yml").read_text())


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _module_args(command: list[str]) -> tuple[str, list[str]]:
    assert command[:2] == ["python", "-m"], f"{command}: run modules as `python -m MODULE`"
    return command[2], command[3:]


def _gunicorn(command: list[str]):
    """gunicorn's own parse of a `gunicorn ...` command."""
    from gunicorn.config import Config

    assert command[0] == "gunicorn", command
    return Config().parser().parse_args(command[1:])


def _property(env_name: str) -> str:
    """The broker property an apache/kafka image variable sets: KAFKA_ prefix dropped, "___" is
    "-", "__" is "_", "_" is "." (the image's own rule, docker/examples/README.md)."""
    parts = env_name.removeprefix("KAFKA_").lower().split("___")
    return "-".join(".".join(p.split("_")).replace("..", "_") for p in parts)


def _parser_of(module: str):
    """The argparse parser behind `python -m module`."""
    package = importlib.util.find_spec(module).submodule_search_locations is not None
    return importlib.import_module(f"{module}.__main__" if package else module)._parser()


def test_the_stack_has_kafka_topics_worker_simulator_and_dashboard(compose):
    assert set(compose["services"]) == {"kafka", *APP_SERVICES}


def test_kafka_is_the_official_image_in_kraft_mode(compose):
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = _env(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{env['KAFKA_NODE_ID']}@kafka:")
    assert not any("ZOOKEEPER" in key for key in env)
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "healthcheck" in kafka


def _listeners(kafka: dict) -> dict[str, str]:
    """Advertised listener name -> host:port."""
    out = {}
    for item in _env(kafka)["KAFKA_ADVERTISED_LISTENERS"].split(","):
        name, address = item.split("://")
        out[name] = address
    return out


def test_clients_use_the_internal_listener(compose):
    kafka = compose["services"]["kafka"]
    env = _env(kafka)
    internal = env["KAFKA_INTER_BROKER_LISTENER_NAME"]
    address = _listeners(kafka)[internal]
    assert address.split(":")[0] == "kafka"  # the service name, resolvable in the network
    port = address.split(":")[1]
    assert f"{internal}://:{port}" in env["KAFKA_LISTENERS"].split(",")
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert _env(service)["KAFKA_BOOTSTRAP_SERVERS"] == address, name
        command = service["command"]
        if "--bootstrap" in command:
            assert command[command.index("--bootstrap") + 1] == address, name


def test_by_default_kafka_is_reachable_on_the_compose_network_only(compose):
    kafka = compose["services"]["kafka"]
    assert "ports" not in kafka  # nothing published on the host
    env = _env(kafka)
    assert set(_listeners(kafka)) == {"INTERNAL"}
    assert "EXTERNAL" not in env["KAFKA_LISTENERS"] + env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]


def test_the_external_listener_is_opt_in_authenticated_and_on_loopback(external):
    kafka = external["services"]["kafka"]
    env = _env(kafka)
    protocol_map = env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    protocols = dict(item.split(":") for item in protocol_map.split(","))
    assert protocols["EXTERNAL"] in ("SASL_PLAINTEXT", "SASL_SSL")  # never plain for outsiders
    assert protocols["INTERNAL"] == "PLAINTEXT"
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    jaas = {_property(k): v for k, v in env.items() if k.endswith("_SASL_JAAS_CONFIG")}
    assert list(jaas) == ["listener.name.external.scram-sha-512.sasl.jaas.config"]
    assert "ScramLoginModule required" in next(iter(jaas.values()))
    host, port = _listeners(kafka)["EXTERNAL"].split(":")
    assert host == "localhost"
    assert kafka["ports"] == [f"${{KAFKA_EXTERNAL_BIND:-127.0.0.1}}:{port}:{port}"]
    users = external["services"]["kafka-users"]
    assert users["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert users["restart"] == "no"
    for name in ("KAFKA_EXTERNAL_USER", "KAFKA_EXTERNAL_PASSWORD"):  # required, no default
        assert _env(users)[name].startswith(f"${{{name}:?")
    script = users["command"][0]
    assert "kafka-configs.sh --bootstrap-server kafka:9092 --alter" in script
    assert "SCRAM-SHA-512=[iterations=8192,password=$${KAFKA_EXTERNAL_PASSWORD}]" in script


def test_the_clients_read_the_settings_the_external_listener_asks_for(external):
    """The override's own comment tells users how to connect; those settings must be ours."""
    from monitor.kafka_security import KafkaSecurity

    text = (REPO / "docker-compose.external.yml").read_text()
    settings = dict(re.findall(r"(KAFKA_(?:SECURITY_PROTOCOL|SASL_\w+))=(\S+)", text))
    settings["KAFKA_SASL_PASSWORD"] = "a long passphrase"
    security = KafkaSecurity.from_env(settings)
    assert security.sasl and security.mechanism == "SCRAM-SHA-512"
    assert security.kafka_python()["sasl_plain_username"] == "ops"


def test_the_dashboard_runs_in_gunicorn_behind_a_login(compose):
    dash = compose["services"]["dashboard"]
    parsed = _gunicorn(dash["command"])
    assert parsed.workers == 1  # the ward's state lives in one process
    assert parsed.args == ["monitor.dashboard.wsgi:server"]
    assert importlib.util.find_spec("monitor.dashboard.wsgi") is not None
    port = parsed.bind[0].rsplit(":", 1)[1]
    assert dash["ports"] == [f"${{ECG_DASHBOARD_BIND:-127.0.0.1}}:{port}:{port}"]
    env = _env(dash)
    assert env["ECG_DASHBOARD_PASSWORD"].startswith("${ECG_DASHBOARD_PASSWORD:?")
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


@pytest.mark.parametrize("name", [n for n in APP_SERVICES if n != "dashboard"])
def test_each_command_is_a_real_module_with_valid_flags(compose, name):
    module, args = _module_args(compose["services"][name]["command"])
    assert importlib.util.find_spec(module) is not None, f"{name}: no module {module}"
    parser = _parser_of(module)
    _, unknown = parser.parse_known_args(args)
    assert not unknown, f"{name}: {module} does not know {unknown}"


def test_services_start_in_order(compose):
    services = compose["services"]
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["topics"]["restart"] == "no"  # a one-shot job
    for name in ("worker", "simulator", "dashboard"):
        condition = services[name]["depends_on"]["topics"]["condition"]
        assert condition == "service_completed_successfully", name


def test_one_dockerfile_builds_every_app_service(compose):
    dockerfile = REPO / "Dockerfile"
    text = dockerfile.read_text()
    for name in APP_SERVICES:
        build = compose["services"][name]["build"]
        assert (REPO / build["context"] / build["dockerfile"]) == dockerfile
    copied = set(re.findall(r"^COPY (\S+)", text, flags=re.MULTILINE))
    # The packages every command imports, and the shipped model the worker loads.
    assert {"monitor", "simulators", "trainer", "models"} <= copied
    assert (REPO / "models" / "ecg_cnn_bilstm.pt").name in text


def test_the_image_installs_the_service_extras_and_the_services_need_no_more():
    """The image gets the worker and dashboard extras only; nothing the services import may
    come from the trainer's extra (plotting, progress bars)."""
    import subprocess
    import sys
    from importlib.metadata import requires

    needs = requires("ecg-monitor") or []
    core = [r for r in needs if "extra ==" not in r]
    train = [r for r in needs if 'extra == "train"' in r]
    assert any("matplotlib" in r for r in train) and not any("matplotlib" in r for r in core)
    assert 'pip install -e ".[worker,dashboard]"' in (REPO / "Dockerfile").read_text()
    code = (
        "import sys, monitor.app, monitor.dashboard.app, monitor.annotate, simulators.replay; "
        "print(sorted({'matplotlib', 'tqdm', 'trainer'} & set(sys.modules)))"
    )
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_gpu_override_puts_the_worker_on_cuda(gpu):
    worker = gpu["services"]["worker"]
    module, args = _module_args(worker["command"])
    parsed, unknown = _parser_of(module).parse_known_args(args)
    assert not unknown and parsed.device == "cuda"
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert worker["build"]["args"]["TORCH_INDEX"].startswith("https://")
