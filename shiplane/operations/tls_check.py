"""The ``tls`` table checked before a deploy writes anything: the user's own certificate files
must load, belong together and name every domain (ACME certificates are the front door's to
obtain, after the switch, so there is nothing to check for them here)."""

from __future__ import annotations

from shiplane.config.loader import EnvSettings
from shiplane.errors import CertificateError, ConfigError
from shiplane.frontdoor.tls import load_pair


def check_tls(settings: EnvSettings) -> None:
    tls = settings.env_config.tls
    if tls is None or tls.acme or tls.cert is None or tls.key is None:
        return
    cert, key = settings.tls_files["cert"], settings.tls_files["key"]
    for host in settings.env_config.domains:
        try:
            load_pair(host, cert, key)
        except CertificateError as exc:
            # The server reads its own copies; the user knows the paths they wrote.
            message = exc.message.replace(str(cert), tls.cert).replace(str(key), tls.key)
            raise ConfigError(
                f"environments.{settings.name}.tls: {message}",
                step="preflight",
                next_action=exc.next_action,
            ) from exc
