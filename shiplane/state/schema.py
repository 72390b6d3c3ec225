"""state.db's tables, and the columns added to them since the first schema (added to older
files when they are opened)."""

from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    id TEXT PRIMARY KEY,
    env TEXT NOT NULL,
    kind TEXT NOT NULL,
    ref TEXT,
    sha TEXT,
    release TEXT,
    previous_release TEXT,
    status TEXT NOT NULL,
    pid INTEGER,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    exit_code INTEGER,
    error TEXT,
    forced INTEGER NOT NULL DEFAULT 0,
    log_path TEXT,
    actor TEXT
);
CREATE INDEX IF NOT EXISTS deployments_env ON deployments(env, started_at);
CREATE TABLE IF NOT EXISTS steps (
    deployment_id TEXT NOT NULL REFERENCES deployments(id),
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    duration_ms INTEGER,
    data TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    PRIMARY KEY (deployment_id, seq)
);
CREATE TABLE IF NOT EXISTS releases (
    env TEXT NOT NULL,
    name TEXT NOT NULL,
    sha TEXT NOT NULL,
    path TEXT NOT NULL,
    created_at TEXT NOT NULL,
    deployment_id TEXT,
    PRIMARY KEY (env, name)
);
CREATE TABLE IF NOT EXISTS env_state (
    env TEXT PRIMARY KEY,
    release TEXT,
    sha TEXT,
    port INTEGER,
    health TEXT,
    instance_id TEXT,
    deployment_id TEXT,
    updated_at TEXT NOT NULL,
    spec TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS verifications (
    id TEXT PRIMARY KEY,
    env TEXT NOT NULL,
    sha TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    phase TEXT NOT NULL,
    only_group TEXT,
    passed INTEGER NOT NULL,
    deployment_id TEXT,
    created_at TEXT NOT NULL,
    created_epoch REAL NOT NULL,
    results TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS verifications_env_sha ON verifications(env, sha, created_epoch);
CREATE TABLE IF NOT EXISTS promotions (
    id TEXT PRIMARY KEY,
    env TEXT NOT NULL,
    source TEXT NOT NULL,
    sha TEXT NOT NULL,
    verification_id TEXT NOT NULL,
    status TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    decided_by TEXT,
    decided_at TEXT,
    deployment_id TEXT
);
CREATE TABLE IF NOT EXISTS fingerprints (
    env TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    source TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fingerprints_env ON fingerprints(env, recorded_at);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('agent', 'person')),
    label TEXT,
    secret_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    last_used_at TEXT
);
CREATE TABLE IF NOT EXISTS env_vars (
    env TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    secret INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (env, key)
);
CREATE TABLE IF NOT EXISTS pins (
    env TEXT PRIMARY KEY,
    settings TEXT NOT NULL,
    pinned_at TEXT NOT NULL,
    pinned_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS gate_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    env TEXT,
    command TEXT NOT NULL,
    outcome TEXT NOT NULL,
    actor TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}',
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS approvers (
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('passphrase', 'ssh', 'totp')),
    verifier TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    uid INTEGER,
    PRIMARY KEY (name, kind)
);
CREATE TABLE IF NOT EXISTS challenges (
    nonce TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    expires_epoch REAL NOT NULL,
    used_at TEXT
);
CREATE TABLE IF NOT EXISTS used_codes (
    name TEXT NOT NULL,
    step INTEGER NOT NULL,
    PRIMARY KEY (name, step)
);
CREATE TABLE IF NOT EXISTS watches (
    deployment_id TEXT PRIMARY KEY,
    env TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    started_at TEXT NOT NULL,
    ends_epoch REAL NOT NULL,
    ended_at TEXT,
    ended_epoch REAL,
    rollback_id TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS watches_env ON watches(env, started_at);
CREATE TABLE IF NOT EXISTS locks (
    env TEXT PRIMARY KEY,
    deployment_id TEXT NOT NULL,
    pid INTEGER NOT NULL,
    pid_start TEXT,
    host TEXT NOT NULL,
    acquired_at TEXT NOT NULL
);
"""


# (table, column, type): columns newer than the first schema, added to older state.db files.
ADDED_COLUMNS = [
    ("deployments", "actor", "TEXT"),
    ("tokens", "uid", "INTEGER"),
    # Who resolved a failed undo (``shiplane recover --resolve ID``), when, and what they said.
    ("deployments", "resolved_by", "TEXT"),
    ("deployments", "resolved_at", "TEXT"),
]
