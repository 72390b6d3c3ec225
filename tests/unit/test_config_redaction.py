"""Config errors never print a secret: URL passwords, and values of secret-looking keys of any
type; and the Redactor masks a secret in the forms it takes on its way out."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import quote

import pytest

from shiplane.config.loader import load_config
from shiplane.config.redact import Redactor
from shiplane.errors import ConfigError

BASE = """
[app]
name = "notes"
run = "python app.py {port}"
[database]
url = "URL"
[environments.dev]
branch = "dev"
port = 8001
env = { API_TOKEN = @VALUE@ }
"""


def error_of(tmp_path: Path, url: str, token: str) -> str:
    path = tmp_path / "shiplane.toml"
    path.write_text(BASE.replace('"URL"', json.dumps(url)).replace("@VALUE@", token))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.message + str(caught.value.next_action)


def test_config_errors_mask_url_passwords_and_secret_values(tmp_path: Path) -> None:
    message = error_of(tmp_path, "mysql://app:hunter2-pw@db/notes", '"fine"')
    assert "hunter2-pw" not in message and "database.url" in message
    message = error_of(tmp_path, "sqlite:///notes.db", "987654321")
    assert "987654321" not in message and "API_TOKEN" in message
    message = error_of(tmp_path, "sqlite:///notes.db", '["tok-in-a-list"]')
    assert "tok-in-a-list" not in message


@pytest.mark.parametrize(
    "secret", ["quo\"te's-x1", "ünïcødé-€-x2", "100%-pure%20-x3", "back\\slash\\n-x4", "L" * 500]
)
def test_every_form_of_a_secret_is_masked(secret: str) -> None:
    redact = Redactor([secret])
    forms = [
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(json.dumps(secret)[1:-1])[1:-1],
        quote(secret, safe=""),
        base64.b64encode(secret.encode()).decode(),
        base64.urlsafe_b64encode(secret.encode()).decode().rstrip("="),
    ]
    for form in forms:
        assert redact(f"before {form} after") == "before *** after", form
    assert redact(json.dumps({"body": json.dumps({"v": secret})})).count("***") == 1
