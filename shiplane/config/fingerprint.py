"""One hash of what a release of a commit runs with in an environment: the commit, the config
as the client sent it (with the files it names: env files, checks, TLS files), and the
environment's variables and secrets (the kept ones included). Equal hashes: a deploy would
change nothing (``shiplane.operations.serving``)."""

from __future__ import annotations

import hashlib
import json

from shiplane.config import snapshot
from shiplane.config.loader import EnvSettings, LoadedConfig


def fingerprint(loaded: LoadedConfig, settings: EnvSettings, sha: str) -> str:
    """What a release of ``sha`` would run with, as one hash (values never leave it: the hash
    covers secrets, so it is not shown either)."""
    sent = loaded.sent
    packed = (
        {"text": sent.text, "files": dict(sent.files)}
        if sent is not None
        else snapshot.pack(loaded)
    )
    material = {
        "sha": sha,
        "config": {"text": packed["text"], "files": packed["files"]},
        "variables": settings.variables,
        "secrets": settings.secrets,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
