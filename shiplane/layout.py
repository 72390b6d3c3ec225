"""Where things live under ``$SHIPLANE_HOME`` (default ``~/.local/share/shiplane``): the host's
server (socket, token, pid, log) at the top, and each app under ``apps/<app>/`` with its
state.db, its bare repository ``repo.git`` and, per environment, ``releases/``, ``shared/``,
``current``, ``backups/``, ``logs/``.

On a host in enforced mode (``shiplane.hostconfig``: ``/etc/shiplane/enforced``) the marker
names the home and the socket, which then lives outside it (``/run/shiplane/server.sock``), and
wins over ``$SHIPLANE_HOME``: every client and the server agree on the one server of the host."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from shiplane.hostconfig import HostConfig, load_host_config

DEFAULT_HOME = Path("~/.local/share/shiplane")


def shiplane_home() -> Path:
    host = load_host_config()
    if host is not None:
        return host.home
    return Path(os.environ.get("SHIPLANE_HOME", str(DEFAULT_HOME))).expanduser().resolve()


@dataclass(frozen=True)
class ServerLayout:
    """The host's server: one per ``$SHIPLANE_HOME``, serving every app under ``apps/``.
    ``socket_path`` puts the control socket elsewhere (enforced mode: a directory the clients'
    group may enter, while ``root`` stays the server user's alone)."""

    root: Path
    socket_path: Path | None = None

    @classmethod
    def default(cls) -> ServerLayout:
        host = load_host_config()
        return cls.from_host_config(host) if host is not None else cls(shiplane_home())

    @classmethod
    def from_host_config(cls, host: HostConfig) -> ServerLayout:
        return cls(host.home, host.socket)

    @classmethod
    def for_home(cls, home: Path) -> ServerLayout:
        """The server of ``home``: the enforced one, with its socket, when the marker names it."""
        host = load_host_config()
        if host is not None and host.home == home:
            return cls.from_host_config(host)
        return cls(home)

    @property
    def socket(self) -> Path:
        return self.socket_path or self.root / "server.sock"

    @property
    def token(self) -> Path:
        return self.root / "server.token"

    @property
    def pid(self) -> Path:
        return self.root / "server.pid"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def state_db(self) -> Path:
        """What belongs to the host, not to one app: the tokens clients present."""
        return self.root / "host.db"

    @property
    def life_lock(self) -> Path:
        """Held (flock) by the one server of this home for as long as it lives."""
        return self.root / "server.lock"

    @property
    def start_lock(self) -> Path:
        return self.root / "server.start.lock"

    @property
    def apps(self) -> Path:
        return self.root / "apps"

    @property
    def certs(self) -> Path:
        """HTTPS certificates the front doors obtained over ACME, one directory per host name
        (0700, keys 0600)."""
        return self.root / "certs"

    @property
    def acme_accounts(self) -> Path:
        """The ACME account keys, one per CA directory."""
        return self.root / "acme"

    def app(self, name: str) -> Layout:
        return Layout(self.root, name)

    def app_names(self) -> list[str]:
        """Apps with a state.db: what the server serves after a restart."""
        if not self.apps.is_dir():
            return []
        return sorted(p.name for p in self.apps.iterdir() if (p / "state.db").is_file())

    def ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)


@dataclass(frozen=True)
class Layout:
    """One app's deploy root, ``<home>/apps/<app>``."""

    home: Path
    app: str

    @classmethod
    def for_app(cls, app: str) -> Layout:
        return cls(shiplane_home(), app)

    @property
    def root(self) -> Path:
        return self.home / "apps" / self.app

    @property
    def server(self) -> ServerLayout:
        return ServerLayout.for_home(self.home)

    @property
    def state_db(self) -> Path:
        return self.root / "state.db"

    @property
    def repo(self) -> Path:
        """The server's own bare repository: clients push commits here, env branches live here."""
        return self.root / "repo.git"

    @property
    def venvs(self) -> Path:
        """The app's virtualenvs, one per dependency key, shared by its releases."""
        return self.root / "venvs"

    @property
    def wheel_cache(self) -> Path:
        """pip's and uv's caches, shared by every app of the host: a rebuild downloads nothing."""
        return self.home / "cache"

    @property
    def config_dir(self) -> Path:
        """The server's copy of the app's shiplane.toml and the files it names, as the last
        client sent them (shiplane.config.snapshot); never the client's own files."""
        return self.root / "config"

    def env_dir(self, env: str) -> Path:
        return self.root / env

    def releases(self, env: str) -> Path:
        return self.env_dir(env) / "releases"

    def shared(self, env: str) -> Path:
        return self.env_dir(env) / "shared"

    def current(self, env: str) -> Path:
        return self.env_dir(env) / "current"

    def backups(self, env: str) -> Path:
        return self.env_dir(env) / "backups"

    def logs(self, env: str) -> Path:
        return self.env_dir(env) / "logs"

    def deploy_log(self, env: str, deployment_id: str) -> Path:
        return self.logs(env) / f"deploy-{deployment_id}.log"

    def ensure(self, env: str | None = None) -> None:
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.root.parent.mkdir(exist_ok=True, mode=0o700)
        self.root.mkdir(exist_ok=True, mode=0o700)
        if env is not None:
            self.env_dir(env).mkdir(exist_ok=True, mode=0o700)
            for directory in (
                self.releases(env),
                self.shared(env),
                self.backups(env),
                self.logs(env),
            ):
                directory.mkdir(exist_ok=True, mode=0o700)

    def database_url(self, env: str, url: str) -> str:
        """sqlite:///relative.db lives in the env's shared dir; other URLs stay as they are."""
        if not url.startswith("sqlite:///"):
            return url
        path = Path(url.removeprefix("sqlite:///"))
        return f"sqlite:///{path if path.is_absolute() else self.shared(env) / path}"
