"""The deployment files in deploy/ stay true to the code they deploy.

What can be checked without systemd, Docker or nginx running: the environment file names every
setting carebot reads and nothing else, each with an explanation; the compose file and the systemd
units run `carebot` commands the CLI accepts, migrate before the workers start and never let
workers migrate; the proxy passes every WebSocket and Server-Sent Events route the adapters
serve, and lets an upload through up to the web chat's own limit. docs/deploy.md is the guide.
"""

from __future__ import annotations

import ast
import configparser
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from adapters.webchat.config import WebchatConfig
from bot.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
ENV_EXAMPLE = DEPLOY / "carebot.env.example"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
LOCATIONS = DEPLOY / "nginx" / "carebot-locations.conf"
SITE = DEPLOY / "nginx" / "carebot.conf"
COMPOSE_NGINX = DEPLOY / "compose" / "nginx.conf"
UNITS = DEPLOY / "systemd"
# read by uvicorn, which `carebot run` serves with (proxy headers)
EXTERNAL_SETTINGS = {"FORWARDED_ALLOW_IPS"}
# read by one command only, never kept in a settings file
COMMAND_ONLY = {"CAREBOT_STAFF_PASSWORD"}
_NAME = re.compile(r"(?:DATABASE_URL|REDIS_URL|CAREBOT_[A-Z0-9_]+)")


def settings_read_by_code() -> set[str]:
    """Every environment variable carebot reads: the first argument of `_env(...)`, `_number(...)`,
    `os.environ.get(...)` and `os.environ[...]` anywhere in bot/ and adapters/."""
    names: set[str] = set()
    for path in [*ROOT.glob("bot/**/*.py"), *ROOT.glob("adapters/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            arg: ast.expr | None = None
            if isinstance(node, ast.Call) and node.args:
                f = node.func
                if (isinstance(f, ast.Name) and f.id in ("_env", "_number", "_pairs", "_list")) or (
                        isinstance(f, ast.Attribute) and f.attr == "get" and isinstance(f.value, ast.Attribute)
                        and f.value.attr == "environ"):
                    arg = node.args[0]
            elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) \
                    and node.value.attr == "environ":
                arg = node.slice
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and _NAME.fullmatch(arg.value):
                names.add(arg.value)
    return names


def env_example_entries() -> dict[str, str]:
    """NAME → the comment block above it, for every `NAME=` or `#NAME=` line of the example."""
    entries: dict[str, str] = {}
    comment: list[str] = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = re.fullmatch(r"#?([A-Z][A-Z0-9_]*)=.*", line.strip())
        if m:
            entries[m.group(1)] = " ".join(comment)
            continue  # a commented-out neighbour shares the comment above both
        if line.startswith("#") and not line.startswith("# ---"):
            comment.append(line.lstrip("# "))
        elif not line.strip():
            comment = []
    return entries


def test_the_scan_finds_the_settings_we_know_of() -> None:
    names = settings_read_by_code()
    assert {"DATABASE_URL", "REDIS_URL", "CAREBOT_SECRET", "CAREBOT_OUTBOX_LEASE", "CAREBOT_MEDIA_DIR",
            "CAREBOT_WEBCHAT_MAX_UPLOAD_MB", "CAREBOT_STAFF_PASSWORD"} <= names


def test_env_example_names_every_setting_and_only_real_ones() -> None:
    entries = env_example_entries()
    read = settings_read_by_code()
    missing = read - COMMAND_ONLY - set(entries)
    assert not missing, f"deploy/carebot.env.example does not explain {sorted(missing)}"
    unknown = set(entries) - read - EXTERNAL_SETTINGS
    assert not unknown, f"deploy/carebot.env.example names settings nothing reads: {sorted(unknown)}"
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    for name in COMMAND_ONLY:
        assert name in text and f"{name}=" not in text, f"{name} is explained but never kept in the file"


def test_every_setting_in_env_example_is_explained() -> None:
    for name, comment in env_example_entries().items():
        assert len(comment.split()) >= 6, f"{name} in deploy/carebot.env.example has no explanation above it"


def test_external_settings_are_read_by_uvicorn() -> None:
    import uvicorn.config

    source = Path(uvicorn.config.__file__).read_text(encoding="utf-8")
    for name in EXTERNAL_SETTINGS:
        assert f'"{name}"' in source, f"uvicorn no longer reads {name}"


def test_env_example_never_shares_a_worker_id_or_port() -> None:
    """A value in the shared file would give every worker the same id (leases, pub/sub) or port."""
    active = {line.split("=", 1)[0] for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
              if re.match(r"[A-Z]", line)}
    assert not active & {"CAREBOT_WORKER_ID", "CAREBOT_PORT"}
    assert {"DATABASE_URL", "REDIS_URL", "CAREBOT_SECRET", "CAREBOT_MEDIA_DIR"} <= active


def _carebot_args(command: list[str]) -> list[str]:
    assert command[0].endswith("carebot"), command
    build_parser().parse_args(command[1:])  # exits (SystemExit) on anything the CLI does not accept
    return command[1:]


def test_compose_runs_commands_the_cli_accepts_in_order() -> None:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "worker", "proxy"} <= set(services)
    assert _carebot_args(services["migrate"]["command"]) == ["db", "upgrade"]
    worker = services["worker"]
    args = _carebot_args(worker["command"])
    assert args[0] == "run" and "--no-migrate" in args
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert worker["deploy"]["replicas"] >= 2
    assert "/readyz" in " ".join(worker["healthcheck"]["test"])
    for name in ("migrate", "worker"):
        env = services[name]["environment"]
        assert set(env) <= settings_read_by_code() | EXTERNAL_SETTINGS, f"{name}: unknown settings"
        assert {"DATABASE_URL", "REDIS_URL", "CAREBOT_SECRET", "CAREBOT_MEDIA_DIR"} <= set(env)
        assert "CAREBOT_WORKER_ID" not in env  # replicas would share it
        assert "media:/var/lib/carebot/media" in services[name]["volumes"]  # one upload directory for all
    assert services["migrate"]["build"]["dockerfile"] == "deploy/compose/Dockerfile"
    assert (COMPOSE.parent / services["migrate"]["build"]["context"] / "deploy/compose/Dockerfile").is_file()
    for volume in services["proxy"]["volumes"]:
        source = volume.split(":")[0]
        if source.endswith(".conf"):
            assert (COMPOSE.parent / source).is_file(), volume


def test_dockerfile_default_command_is_a_worker() -> None:
    text = (DEPLOY / "compose" / "Dockerfile").read_text(encoding="utf-8")
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M)
    assert cmd is not None
    args = _carebot_args(yaml.safe_load(cmd.group(1)))
    assert args[0] == "run" and "--no-migrate" in args


def _unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name, encoding="utf-8")
    return parser


def test_systemd_workers_require_the_migration_and_never_migrate() -> None:
    worker, migrate = _unit("carebot@.service"), _unit("carebot-migrate.service")
    assert "carebot-migrate.service" in worker["Unit"]["Requires"].split()
    assert "carebot-migrate.service" in worker["Unit"]["After"].split()
    start = shlex.split(worker["Service"]["ExecStart"].replace("%i", "8001"))
    args = _carebot_args(start)
    assert args[0] == "run" and "--no-migrate" in args and args[args.index("--port") + 1] == "8001"
    environment = worker["Service"]["Environment"]
    assert "CAREBOT_WORKER_ID=%H-%i" in environment and "CAREBOT_PORT=%i" in environment
    assert migrate["Service"]["Type"] == "oneshot"
    assert "RemainAfterExit" not in migrate["Service"]  # else restarting it would restart every worker
    assert "carebot db upgrade" in migrate["Service"]["ExecStart"]
    for unit in (worker, migrate):
        assert unit["Service"]["EnvironmentFile"] == "/etc/carebot/carebot.env"
    assert worker["Install"]["WantedBy"] == "carebot.target"


def _location(config: str, path: str) -> str:
    m = re.search(r"location\s+(?:=\s+)?" + re.escape(path) + r"\s*\{(.*?)\n\}", config, re.S)
    assert m is not None, f"no nginx location for {path}"
    return m.group(1)


def _size(value: str) -> int:
    units = {"k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
    return int(value[:-1]) * units[value[-1].lower()] if value[-1].isalpha() else int(value)


def test_proxy_passes_websockets_sse_and_uploads() -> None:
    from starlette.routing import WebSocketRoute

    from adapters.webchat.routes import webchat_routes

    config = LOCATIONS.read_text(encoding="utf-8")

    class _Adapter:  # the routes only read the adapter's config while being listed
        def __init__(self) -> None:
            self.config = WebchatConfig()

    for route in webchat_routes(_Adapter()):  # type: ignore[arg-type]
        if isinstance(route, WebSocketRoute):
            block = _location(config, route.path)
            assert "proxy_set_header Upgrade $http_upgrade" in block
            assert "proxy_set_header Connection $connection_upgrade" in block
    assert "text/event-stream" in (ROOT / "adapters/console/routes.py").read_text(encoding="utf-8")
    assert "proxy_buffering off" in _location(config, "/console/events")
    upload = _location(config, "/webchat/api/upload")
    limit = _size(re.search(r"client_max_body_size\s+(\w+);", upload).group(1))  # type: ignore[union-attr]
    assert limit > WebchatConfig().max_upload_bytes, "nginx would refuse uploads the web chat accepts"
    assert "return 404" in _location(config, "/metrics")  # per-worker metrics are scraped per worker
    assert "X-Forwarded-For $remote_addr" in config  # the patient's own address, not one they wrote
    for site in (SITE, COMPOSE_NGINX):
        text = site.read_text(encoding="utf-8")
        assert "upstream carebot" in text and "map $http_upgrade $connection_upgrade" in text
        assert "carebot-locations.conf" in text


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (apt-get install nginx)")
def test_nginx_accepts_the_site(tmp_path: Path) -> None:
    """`nginx -t` on the one-machine site with its paths moved under tmp_path."""
    (tmp_path / "ssl").mkdir()
    key, cert = tmp_path / "ssl/privkey.pem", tmp_path / "ssl/fullchain.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True)
    site = SITE.read_text(encoding="utf-8").replace("/etc/ssl/carebot", str(tmp_path / "ssl")) \
        .replace("/var/log/nginx", str(tmp_path)).replace("/etc/nginx/snippets", str(LOCATIONS.parent))
    (tmp_path / "site.conf").write_text(site, encoding="utf-8")
    temp = " ".join(f"{k}_temp_path {tmp_path / k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path / 'nginx.pid'}; error_log {tmp_path / 'error.log'};\nevents {{}}\n"
        f"http {{ {temp} access_log off; include {tmp_path / 'site.conf'}; }}\n", encoding="utf-8")
    result = subprocess.run(["nginx", "-t", "-q", "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
