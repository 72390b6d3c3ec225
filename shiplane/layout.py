"""Where things live under an app's deploy root: ``$SHIPLANE_HOME/<app>/`` (default
``~/.local/share/shiplane/<app>``) holds state.db, the server's socket, token and log, its bare
repository ``repo.git``, and per environment ``releases/``, ``shared/``, ``current``,
``backups/`` and ``logs/``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = Path("~/.local/share/shiplane")


def shiplane_home() -> Path:
    return Path(os.environ.get("SHIPLANE_HOME", str(DEFAULT_HOME))).expanduser().resolve()


@dataclass(frozen=True)
class Layout:
    root: Path

    @classmethod
    def for_app(cls, app: str) -> Layout:
        return cls(shiplane_home() / app)

    @property
    def state_db(self) -> Path:
        return self.root / "state.db"

    @property
    def server_socket(self) -> Path:
        return self.root / "server.sock"

    @property
    def server_token(self) -> Path:
        return self.root / "server.token"

    @property
    def server_pid(self) -> Path:
        return self.root / "server.pid"

    @property
    def server_log(self) -> Path:
        return self.root / "server.log"

    @property
    def repo(self) -> Path:
        """The server's own bare repository: clients push commits here, env branches live here."""
        return self.root / "repo.git"

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
        self.root.parent.mkdir(parents=True, exist_ok=True)
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
