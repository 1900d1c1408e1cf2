"""`compose.yaml`, the `Dockerfile` and `.dockerignore`: valid, and wired to the settings Mintlog reads.

Docker cannot run containers here and the Compose CLI plugin is not installed, so:
- `compose.yaml` is interpolated as Compose does it (`${VAR:-default}`, `${VAR-default}`, `$$`), with an
  empty environment, then validated against the Compose JSON schema vendored in `tests/data/`;
- each Mintlog container's environment (the image's `ENV`, then the service's `environment`) and command go
  through Mintlog's own argument parser, `load_settings` and `bootstrap`, so an unknown variable, a bad value,
  a misspelt role or an embedded adapter where the shared one belongs fails here;
- the wiring rules (each role once, what it connects to started and healthy before it, the schema migrated
  before any role, ports, health checks) and the image rules are functions returning problems, and every
  rule is shown to catch a broken file (`test_a_broken_*`).
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import http.server
import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from mintlog.cli import _parser as mintlog_parser  # pyright: ignore[reportPrivateUsage]
from mintlog.errors import ConfigError
from mintlog.settings import ALL_ROLES, Settings, iter_setting_specs, load_settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
SCHEMA = REPO / "tests" / "data" / "compose_spec.json"

ROLE_PORTS = {"ingest": 8080, "api": 8081}
READY = ("service_healthy", "service_completed_successfully")
SETTING_NAMES = frozenset(spec.env for spec in iter_setting_specs())

Problems = list[str]


# --- Compose interpolation and schema ----------------------------------------------------------------------

_VARIABLE = re.compile(r"\$(\$|\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)")
_BRACED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)(.*))?", re.DOTALL)


def interpolate(node: Any, env: Mapping[str, str], problems: Problems, where: str = "") -> Any:
    """`node` with every `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}` and `$$` in its string values
    replaced as Compose does; a variable without a default, or another form, is a problem."""
    if isinstance(node, dict):
        return {key: interpolate(value, env, problems, f"{where}/{key}") for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(value, env, problems, f"{where}[{i}]") for i, value in enumerate(node)]
    if not isinstance(node, str):
        return node

    def replace(match: re.Match[str]) -> str:
        token = match.group(1)
        if token == "$":
            return "$"
        body = token[1:-1] if token.startswith("{") else token
        braced = _BRACED.fullmatch(body)
        if braced is None:
            problems.append(f"{where}: unsupported interpolation ${token}")
            return ""
        name, operator, default = braced.groups()
        value = env.get(name)
        if operator == ":-":
            return value or default
        if operator == "-":
            return default if value is None else value
        if value is None:
            problems.append(f"{where}: ${name} is used without a default")
            return ""
        return value

    return _VARIABLE.sub(replace, node)


def load_compose(text: str, env: Mapping[str, str] | None = None) -> tuple[dict[str, Any], Problems]:
    problems: Problems = []
    document = yaml.safe_load(text)
    assert isinstance(document, dict), "compose.yaml is not a mapping"
    return interpolate(document, env or {}, problems), problems


@functools.cache
def _schema_validator() -> Any:
    # Its `$schema` ("…/draft/2019-09/schema#") is not a URI jsonschema knows; it uses only draft-07 keywords.
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema)


def schema_problems(document: dict[str, Any]) -> Problems:
    return [
        f"schema: {'/'.join(str(part) for part in error.absolute_path) or '(top)'}: {error.message}"
        for error in _schema_validator().iter_errors(document)
    ]


# --- Dockerfile and .dockerignore --------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[list[Instruction]]:
    """The instructions of each build stage (a new stage starts at every FROM)."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[list[Instruction]] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        instruction = Instruction(keyword.upper(), args.strip())
        if instruction.keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def exec_form(args: str) -> list[str] | None:
    if not args.startswith("["):
        return None
    value = json.loads(args)
    return value if isinstance(value, list) else None


def image_env(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            for word in shlex.split(instruction.args):
                name, _, value = word.partition("=")
                env[name] = value
    return env


def healthcheck_command(stage: list[Instruction]) -> list[str] | None:
    for instruction in stage:
        if instruction.keyword == "HEALTHCHECK":
            if instruction.args.upper() == "NONE":
                return None
            _, _, command = instruction.args.partition(" CMD ")
            return exec_form(command.strip())
    return None


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Whether `.dockerignore` keeps `path` (or a parent directory of it) out of the build context."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern[1:] if negated else pattern
        body = body.strip("/")
        if any(fnmatch.fnmatchcase(candidate, body) for candidate in candidates):
            excluded = not negated
    return excluded


def dockerignore_patterns(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def dockerfile_problems(text: str, dockerignore: str) -> Problems:
    problems: Problems = []
    stages = parse_dockerfile(text)
    if len(stages) < 2:
        return ["Dockerfile: not a multi-stage build (a builder stage, then a runtime stage)"]
    final = stages[-1]

    def last(keyword: str) -> str | None:
        found = [instruction.args for instruction in final if instruction.keyword == keyword]
        return found[-1] if found else None

    user = last("USER")
    if user is None or user.split(":")[0] in ("root", "0"):
        problems.append(f"Dockerfile: the runtime stage runs as root (USER {user})")
    if exec_form(last("ENTRYPOINT") or "") != ["mintlog"]:
        problems.append(f'Dockerfile: ENTRYPOINT is {last("ENTRYPOINT")}, not ["mintlog"]')
    if exec_form(last("CMD") or "") != ["run"]:
        problems.append(f'Dockerfile: CMD is {last("CMD")}, not ["run"]')
    probe = healthcheck_command(final)
    if probe is None or not any("/healthz" in part for part in probe):
        problems.append("Dockerfile: no HEALTHCHECK probing /healthz")
    exposed = {port for instruction in final if instruction.keyword == "EXPOSE" for port in instruction.args.split()}
    for port in ("8080", "8081"):
        if port not in exposed:
            problems.append(f"Dockerfile: port {port} is not exposed")
    env = image_env(final)
    if env.get("MINTLOG_HTTP__HOST") != "0.0.0.0":
        problems.append("Dockerfile: MINTLOG_HTTP__HOST is not 0.0.0.0: the HTTP roles would be unreachable")
    if env.get("MINTLOG_DATA_DIR") != "/var/lib/mintlog":
        problems.append("Dockerfile: MINTLOG_DATA_DIR is not /var/lib/mintlog")
    if not any(instruction.keyword == "VOLUME" and "/var/lib/mintlog" in instruction.args for instruction in final):
        problems.append("Dockerfile: /var/lib/mintlog is not a VOLUME")
    problems += [f"Dockerfile: ENV {name} is not a Mintlog setting" for name in _unknown_settings(env)]
    try:
        load_settings({k: v for k, v in env.items() if k.startswith("MINTLOG_")}, env_file=None)
    except ConfigError as exc:
        problems.append(f"Dockerfile: {exc}")

    patterns = dockerignore_patterns(dockerignore)
    for stage in stages:
        for instruction in stage:
            if instruction.keyword != "COPY" or "--from=" in instruction.args:
                continue
            words = [word for word in shlex.split(instruction.args) if not word.startswith("--")]
            for source in words[:-1]:
                if not (REPO / source).exists():
                    problems.append(f"Dockerfile: COPY {source}: no such file in the repository")
                if dockerignore_excludes(patterns, source):
                    problems.append(f"Dockerfile: COPY {source}: excluded from the build context by .dockerignore")
    for private in (".venv", ".git", "data", ".env", "tests"):
        if not dockerignore_excludes(patterns, private):
            problems.append(f".dockerignore: {private} would be sent to the build context")
    return problems


def _unknown_settings(env: Mapping[str, str]) -> list[str]:
    return sorted(name for name in env if name.startswith("MINTLOG_") and name not in SETTING_NAMES)


# --- Compose wiring ----------------------------------------------------------------------------------------


def _command(service: Mapping[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def _environment(service: Mapping[str, Any]) -> dict[str, str | None]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return {name: value for name, _, value in (str(item).partition("=") for item in environment)}
    return {str(name): None if value is None else str(value) for name, value in environment.items()}


def _depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        return {str(name): "service_started" for name in depends}
    return {str(name): str((spec or {}).get("condition", "service_started")) for name, spec in depends.items()}


def ready_before(services: Mapping[str, Any], name: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """The services Compose has brought to healthy (or to a successful exit) before `name` starts."""
    ready: set[str] = set()
    for dependency, condition in _depends_on(services.get(name) or {}).items():
        if condition in READY and dependency not in seen:
            ready |= {dependency} | ready_before(services, dependency, seen | {name})
    return ready


def _healthcheck_enabled(service: Mapping[str, Any]) -> bool:
    check = service.get("healthcheck")
    return isinstance(check, dict) and not check.get("disable") and bool(check.get("test"))


def _published(service: Mapping[str, Any]) -> list[tuple[int | None, int]]:
    """(host port, container port) of each published port."""
    published: list[tuple[int | None, int]] = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            host = port.get("published")
            published.append((None if host is None else int(host), int(port["target"])))
            continue
        text = str(port).split("/")[0]
        pieces = text.split(":")
        published.append((int(pieces[-2]) if len(pieces) > 1 else None, int(pieces[-1])))
    return published


def _is_mintlog(service: Mapping[str, Any], mintlog_images: set[str]) -> bool:
    build = service.get("build")
    context = build if isinstance(build, str) else (build or {}).get("context")
    return context in (".", "./") or service.get("image") in mintlog_images


def _hosts(value: str) -> list[str]:
    hosts: list[str] = []
    for part in value.split(","):
        part = part.strip()
        if "://" in part:
            host = urlsplit(part).hostname
            if host:
                hosts.append(host)
    return hosts


def container_settings(
    service: Mapping[str, Any], base_env: Mapping[str, str], where: str, problems: Problems
) -> tuple[Settings, Any] | None:
    """The settings a Mintlog container of `service` loads, and its parsed command; None after a problem."""
    environment = _environment(service)
    for name, value in environment.items():
        if value is None:
            problems.append(f"{where}: {name} has no value (it would be taken from the host's environment)")
    env = {**base_env, **{k: v for k, v in environment.items() if v is not None}}
    problems += [f"{where}: {name} is not a Mintlog setting" for name in _unknown_settings(env)]
    try:
        args = mintlog_parser().parse_args(_command(service))
    except SystemExit:
        problems.append(f"{where}: `mintlog {' '.join(_command(service))}` is not a valid command")
        return None
    overrides = {"MINTLOG_ROLES": args.roles} if getattr(args, "roles", None) else {}
    try:
        settings = load_settings({k: v for k, v in env.items() if k.startswith("MINTLOG_")}, None, overrides)
    except ConfigError as exc:
        problems.append(f"{where}: {exc}")
        return None
    return settings, args


def wiring_problems(document: Mapping[str, Any], base_env: Mapping[str, str]) -> Problems:
    problems: Problems = []
    services: dict[str, Any] = dict(document.get("services") or {})
    mintlog_images = {
        str(service["image"])
        for service in services.values()
        if service.get("build") is not None and "image" in service
    }
    runners: dict[str, list[str]] = {role: [] for role in ALL_ROLES}
    migrators: dict[str, str] = {}
    role_settings: dict[str, tuple[str, Settings]] = {}

    for name, service in services.items():
        if not _is_mintlog(service, mintlog_images):
            continue
        loaded = container_settings(service, base_env, f"service {name}", problems)
        if loaded is None:
            continue
        settings, args = loaded
        if args.command == "db" and args.db_command == "upgrade":
            migrators[name] = settings.database_url
        if args.command != "run":
            continue
        if not args.roles:
            problems.append(f"service {name}: `run` without --role runs all six roles in one container")
        if len(settings.roles) != 1:
            problems.append(f"service {name}: runs {','.join(settings.roles)}; run one role per container")
        for role in settings.roles:
            runners[role].append(name)
        if len(settings.roles) == 1:
            role_settings[name] = (settings.roles[0], settings)

    for role, names in runners.items():
        if len(names) != 1:
            problems.append(f"role {role}: run by {len(names)} services ({', '.join(names) or 'none'}), not one")

    for name, (role, settings) in role_settings.items():
        service = services[name]
        where = f"service {name} ({role})"
        problems += _adapter_problems(settings, where)
        ready = ready_before(services, name)
        used = {
            "MINTLOG_NATS__URL": _hosts(settings.nats.url),
            "MINTLOG_STORE__URL": _hosts(settings.store.url),
            "MINTLOG_DATABASE__URL": _hosts(settings.database_url),
            "MINTLOG_CACHE__URL": _hosts(settings.cache.url),
            "MINTLOG_BLOB__S3__ENDPOINT": _hosts(settings.blob.s3.endpoint),
        }
        for variable, hosts in used.items():
            for host in hosts:
                if host not in services:
                    problems.append(f"{where}: {variable} names {host}, which is not a service of compose.yaml")
                elif host not in ready:
                    problems.append(
                        f"{where}: uses {host} ({variable}) but does not wait for it to be healthy (depends_on)"
                    )
        if not settings.database.migrate_on_start and not any(
            migrator in ready and url == settings.database_url for migrator, url in migrators.items()
        ):
            problems.append(
                f"{where}: MINTLOG_DATABASE__MIGRATE_ON_START is false but no `db upgrade` one-shot on the same "
                "database completes before it"
            )
        problems += _http_problems(role, settings, service, where)

    for name, service in services.items():
        for dependency, condition in _depends_on(service).items():
            target = services.get(dependency)
            if target is None:
                problems.append(f"service {name}: depends on {dependency}, which is not a service")
            elif condition == "service_healthy" and not _healthcheck_enabled(target):
                problems.append(f"service {name}: waits for {dependency} to be healthy, which has no health check")
            elif condition == "service_completed_successfully" and target.get("restart", "no") not in (
                "no",
                "on-failure",
            ):
                problems.append(f"service {name}: waits for one-shot {dependency}, which restarts forever")
        for host_port, container_port in _published(service):
            for port in {host_port, container_port} - {None}:
                owner = {8080: "ingest", 8081: "api"}.get(port)
                if owner is not None and name not in runners[owner]:
                    problems.append(f"service {name}: publishes port {port}, which belongs to {owner}")
    return problems


def _adapter_problems(settings: Settings, where: str) -> Problems:
    problems: Problems = []
    nats = [url.strip() for url in settings.nats.url.split(",") if url.strip()]
    if not nats or not all(url.startswith(("nats://", "tls://")) for url in nats):
        problems.append(f"{where}: MINTLOG_NATS__URL={settings.nats.url!r} does not name the shared NATS")
    if not settings.store.url.startswith(("opensearch://", "http://", "https://")):
        problems.append(f"{where}: MINTLOG_STORE__URL={settings.store.url!r} does not select OpenSearch")
    if not settings.database_url.startswith("postgresql+asyncpg://"):
        problems.append(f"{where}: MINTLOG_DATABASE__URL does not select PostgreSQL")
    if not settings.cache.url.startswith(("redis://", "rediss://")):
        problems.append(f"{where}: MINTLOG_CACHE__URL={settings.cache.url!r} does not select Redis")
    if not settings.blob.url.startswith("s3://"):
        problems.append(f"{where}: MINTLOG_BLOB__URL={settings.blob.url!r} does not select S3")
    return problems


def _http_problems(role: str, settings: Settings, service: Mapping[str, Any], where: str) -> Problems:
    problems: Problems = []
    published = _published(service)
    if role not in ROLE_PORTS:
        if published:
            problems.append(f"{where}: publishes {published} but serves no HTTP")
        ops_port = settings.http.ops_port
        check = service.get("healthcheck") or {}
        if not ops_port:
            problems.append(f"{where}: serves no API and sets no MINTLOG_HTTP__OPS_PORT, so nothing can probe it")
        elif not _healthcheck_enabled(service) or f":{ops_port}/healthz" not in " ".join(check.get("test", [])):
            problems.append(f"{where}: its health check does not probe /healthz on the ops port {ops_port}")
        return problems
    port = settings.http.ingest_port if role == "ingest" else settings.http.api_port
    if port != ROLE_PORTS[role]:
        problems.append(f"{where}: listens on {port}, not {ROLE_PORTS[role]}")
    if settings.http.host not in ("0.0.0.0", "::"):
        problems.append(f"{where}: MINTLOG_HTTP__HOST={settings.http.host} is unreachable from other containers")
    if (ROLE_PORTS[role], port) not in published:
        problems.append(f"{where}: does not publish {ROLE_PORTS[role]}:{port} (has {published})")
    check = service.get("healthcheck") or {}
    if not _healthcheck_enabled(service) or f":{port}/healthz" not in " ".join(check.get("test", [])):
        problems.append(f"{where}: its health check does not probe /healthz on port {port}")
    return problems


# --- Fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile_env() -> dict[str, str]:
    return image_env(parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))[-1])


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document, problems = load_compose(COMPOSE.read_text(encoding="utf-8"))
    assert problems == []
    return document


def all_problems(document: dict[str, Any], base_env: Mapping[str, str]) -> Problems:
    return schema_problems(document) + wiring_problems(document, base_env)


# --- The real files ----------------------------------------------------------------------------------------


def _docker_compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    return probe.returncode == 0


def test_compose_yaml_is_valid_against_the_compose_schema(compose: dict[str, Any]) -> None:
    assert schema_problems(compose) == []
    # Where the Compose CLI plugin exists (not on this project's machines), its own validation must agree.
    if _docker_compose_available():
        checked = subprocess.run(
            ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"], capture_output=True, text=True, timeout=60
        )
        assert checked.returncode == 0, checked.stderr


def test_compose_yaml_wires_every_role_to_the_shared_services(
    compose: dict[str, Any], dockerfile_env: dict[str, str]
) -> None:
    assert wiring_problems(compose, dockerfile_env) == []
    services = compose["services"]
    for role in ALL_ROLES:
        assert _command(services[role]) == ["run", f"--role={role}"]
    assert {"nats", "postgres", "redis", "opensearch", "minio", "minio-init", "migrate"} <= set(services)


def test_the_dockerfile_builds_a_non_root_mintlog_image_with_a_health_check() -> None:
    assert dockerfile_problems(DOCKERFILE.read_text(encoding="utf-8"), DOCKERIGNORE.read_text(encoding="utf-8")) == []


def test_compose_interpolation_uses_defaults_and_the_environment() -> None:
    problems: Problems = []
    node = {"a": "${X:-dflt}", "b": "${Y-dflt}", "c": "$$HOME", "d": ["${Z}", "x$W"]}
    assert interpolate(node, {"X": "", "Y": "", "Z": "z", "W": "w"}, problems) == {
        "a": "dflt",
        "b": "",
        "c": "$HOME",
        "d": ["z", "xw"],
    }
    assert problems == []
    interpolate({"a": "${MISSING}", "b": "${Q:?set it}"}, {}, problems)
    assert len(problems) == 2


@pytest.mark.parametrize("role", ALL_ROLES)
async def test_each_role_container_selects_the_production_adapters(
    compose: dict[str, Any], dockerfile_env: dict[str, str], role: str
) -> None:
    from mintlog.adapters.bus.nats import NatsEventBus
    from mintlog.adapters.cache.resilient import ResilientCache
    from mintlog.adapters.db.sql import SqlMetadataStore
    from mintlog.adapters.logstore.opensearch import OpenSearchLogStore
    from mintlog.adapters.ratelimit.fallback import FallbackRateLimiter
    from mintlog.launch.bootstrap import bootstrap

    problems: Problems = []
    loaded = container_settings(compose["services"][role], dockerfile_env, role, problems)
    assert problems == []
    assert loaded is not None
    settings, _ = loaded
    assert settings.roles == (role,)
    runtime = bootstrap(settings)
    try:
        assert isinstance(runtime.bus, NatsEventBus)
        assert isinstance(runtime.store, OpenSearchLogStore)
        assert isinstance(runtime.metadata, SqlMetadataStore)
        assert settings.database_url.startswith("postgresql+asyncpg://mintlog:")
        assert isinstance(runtime.cache, ResilientCache)
        assert isinstance(runtime.rate_limiter, FallbackRateLimiter)
        assert type(runtime.blobs).__module__ == "mintlog.adapters.blob.s3"
        assert settings.blob.s3.endpoint == "http://minio:9000"
        assert settings.data_dir == "/var/lib/mintlog"
    finally:
        await runtime.close()


def test_the_nats_service_runs_jetstream_with_an_fsync_on_every_message(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    nats = compose["services"]["nats"]
    script = "\n".join(_command(nats))
    match = re.search(r"printf '([^']*)' > (\S+)", script)
    assert match is not None, "the nats service no longer writes its config with printf"
    config = match.group(1).replace("\\n", "\n")
    assert re.search(r"^\s*sync_interval:\s*always\s*$", config, re.MULTILINE)
    assert re.search(rf"nats-server -c {re.escape(match.group(2))} -js -sd /data\b", script)
    path = tmp_path / "nats.conf"
    path.write_text(config, encoding="utf-8")
    binary = Path(sysconfig.get_path("scripts")) / "nats-server"
    checked = subprocess.run([str(binary), "-c", str(path), "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    assert any(volume.endswith(":/data") for volume in nats["volumes"])


# --- The image's health check, run for real against a local HTTP server -------------------------------------


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()
        self.wfile.write(b'{"status":"ok"}')

    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def _health_server(status: int) -> Iterator[int]:
    handler = type("Handler", (_Health,), {"status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run_image_health_check(ingest_port: int, api_port: int) -> int:
    probe = healthcheck_command(parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))[-1])
    assert probe is not None
    assert probe[:2] == ["python", "-c"]
    env = {"MINTLOG_HTTP__INGEST_PORT": str(ingest_port), "MINTLOG_HTTP__API_PORT": str(api_port)}
    return subprocess.run([sys.executable, *probe[1:]], env=env, timeout=30, capture_output=True).returncode


def test_the_image_health_check_passes_when_either_port_answers_healthz() -> None:
    with _health_server(200) as port:
        assert _run_image_health_check(_closed_port(), port) == 0
        assert _run_image_health_check(port, _closed_port()) == 0


def test_the_image_health_check_fails_when_nothing_answers_or_healthz_fails() -> None:
    assert _run_image_health_check(_closed_port(), _closed_port()) == 1
    with _health_server(503) as port:
        assert _run_image_health_check(port, port) == 1


# --- Broken files are caught -------------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _env(service: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def get(document: dict[str, Any]) -> dict[str, Any]:
        return document["services"][service]["environment"]

    return get


def _set_env(service: str, name: str, value: Any) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        document["services"][service]["environment"] = {**_env(service)(document), name: value}

    return mutate


def _drop_env(service: str, name: str) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        document["services"][service]["environment"] = {
            key: value for key, value in _env(service)(document).items() if key != name
        }

    return mutate


def _set(service: str, key: str, value: Any) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        document["services"][service][key] = value

    return mutate


def _drop_dependency(service: str, dependency: str) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        depends = dict(document["services"][service]["depends_on"])
        del depends[dependency]
        document["services"][service]["depends_on"] = depends

    return mutate


def _remove_service(service: str) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        del document["services"][service]

    return mutate


def _duplicate_service(service: str, new_name: str) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        document["services"][new_name] = copy.deepcopy(document["services"][service])

    return mutate


BROKEN_COMPOSE: dict[str, tuple[Mutation, str]] = {
    "misspelt service key": (_set("ingest", "depend_on", {}), "schema: services/ingest"),
    "unquoted boolean in environment": (
        _set_env("pipeline", "MINTLOG_RETENTION__ENABLED", True),
        "schema: services/pipeline/environment",
    ),
    "unknown setting": (_set_env("api", "MINTLOG_NATS__URI", "nats://nats:4222"), "MINTLOG_NATS__URI"),
    "bad setting value": (_set_env("alert", "MINTLOG_NATS__SYNC_INTERVAL", "sometimes"), "SYNC_INTERVAL"),
    "misspelt role": (_set("pipeline", "command", ["run", "--role=pipelin"]), "service pipeline"),
    "a role missing": (_remove_service("notify"), "role notify: run by 0 services"),
    "a role twice": (_duplicate_service("alert", "alert-2"), "role alert: run by 2 services"),
    "all roles in one container": (_set("alert", "command", ["run"]), "runs all six roles"),
    "embedded store in a role": (_drop_env("api", "MINTLOG_STORE__URL"), "does not select OpenSearch"),
    "embedded bus in a role": (_set_env("ingest", "MINTLOG_NATS__URL", ""), "does not name the shared NATS"),
    "sqlite in a role": (
        _set_env("notify", "MINTLOG_DATABASE__URL", "sqlite+aiosqlite:////var/lib/mintlog/m.db"),
        "does not select PostgreSQL",
    ),
    "no redis in a role": (_drop_env("ingest", "MINTLOG_CACHE__URL"), "does not select Redis"),
    "filesystem archive in a role": (_drop_env("pipeline", "MINTLOG_BLOB__URL"), "does not select S3"),
    "host that is no service": (
        _set_env("pipeline", "MINTLOG_STORE__URL", "http://elastic:9200"),
        "names elastic, which is not a service",
    ),
    "dependency not awaited": (_drop_dependency("ingest", "opensearch"), "uses opensearch"),
    "bucket not awaited": (_drop_dependency("pipeline", "minio-init"), "uses minio"),
    "migration not awaited": (_drop_dependency("api", "migrate"), "MIGRATE_ON_START is false"),
    "migration service gone": (_remove_service("migrate"), "depends on migrate, which is not a service"),
    "dependency without health check": (_set("redis", "healthcheck", {"disable": True}), "waits for redis"),
    "one-shot that restarts": (_set("minio-init", "restart", "always"), "restarts forever"),
    "ingest bound to loopback": (_set_env("ingest", "MINTLOG_HTTP__HOST", "127.0.0.1"), "unreachable"),
    "api port not published": (_set("api", "ports", []), "does not publish 8081:8081"),
    "api on the ingest port": (_set("api", "ports", ["8080:8081"]), "belongs to ingest"),
    "worker publishing a port": (_set("pipeline", "ports", ["9000:9000"]), "serves no HTTP"),
    "worker with a health check that probes nothing": (
        _set("alert", "healthcheck", {"test": ["CMD", "true"]}),
        "does not probe /healthz on the ops port 9090",
    ),
    "worker without an ops port": (_set_env("notify", "MINTLOG_HTTP__OPS_PORT", "0"), "nothing can probe it"),
    "ingest health check on the wrong port": (
        _set("ingest", "healthcheck", {"test": ["CMD", "curl", "http://127.0.0.1:8081/healthz"]}),
        "probe /healthz on port 8080",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN_COMPOSE))
def test_a_broken_compose_file_is_caught(compose: dict[str, Any], dockerfile_env: dict[str, str], case: str) -> None:
    mutate, expected = BROKEN_COMPOSE[case]
    document = copy.deepcopy(compose)
    mutate(document)

    problems = all_problems(document, dockerfile_env)

    assert any(expected in problem for problem in problems), problems


def _replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new)

    return edit


BROKEN_DOCKERFILE: dict[str, tuple[Callable[[str], str], Callable[[str], str], str]] = {
    "root user": (_replace("USER mintlog:mintlog", "USER root"), str, "runs as root"),
    "no user": (_replace("USER mintlog:mintlog\n", ""), str, "runs as root"),
    "another entrypoint": (_replace('ENTRYPOINT ["mintlog"]', 'ENTRYPOINT ["python"]'), str, "ENTRYPOINT"),
    "no health check": (lambda text: re.sub(r"HEALTHCHECK .*?\n(?=STOPSIGNAL)", "", text, flags=re.S), str, "HEALTH"),
    "single stage": (
        lambda text: re.sub(r"(?s)FROM \$\{PYTHON_IMAGE\} AS builder.*?(?=FROM)", "", text),
        str,
        "multi-stage",
    ),
    "loopback host": (_replace("MINTLOG_HTTP__HOST=0.0.0.0", "MINTLOG_HTTP__HOST=127.0.0.1"), str, "0.0.0.0"),
    "unknown setting": (_replace("MINTLOG_DATA_DIR=", "MINTLOG_DATADIR="), str, "MINTLOG_DATADIR"),
    "port not exposed": (_replace("EXPOSE 8080 8081", "EXPOSE 8080"), str, "8081"),
    "sources ignored": (str, _replace("!mintlog/\n", ""), "COPY mintlog"),
    "secrets sent to the build": (str, _replace("*\n", ""), ".env would be sent"),
}


@pytest.mark.parametrize("case", list(BROKEN_DOCKERFILE))
def test_a_broken_dockerfile_is_caught(case: str) -> None:
    edit_dockerfile, edit_ignore, expected = BROKEN_DOCKERFILE[case]
    dockerfile = edit_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))
    ignore = edit_ignore(DOCKERIGNORE.read_text(encoding="utf-8"))

    problems = dockerfile_problems(dockerfile, ignore)

    assert any(expected in problem for problem in problems), problems
