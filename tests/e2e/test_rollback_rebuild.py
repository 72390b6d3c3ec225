"""Issue 14, fixing forward always works: `rollback` to a kept release whose directory is gone
builds it again from its commit; one that cannot be built again is skipped over by a plain
`rollback` (which says so) and refused by name, with clear JSON, by `rollback --to`. Real
server, git, builds and HTTP."""

from __future__ import annotations

import shutil

import httpx

from tests.support.app_repo import AppRepo
from tests.support.faults import without_checks

# The kept build refuses a tree that still has LEGACY: the release that had it can no longer
# be built again (as when a build's tools or inputs changed since).
STRICT_BUILD = (
    'build = ["python -m compileall -q app.py migrations"]',
    'build = ["python -m compileall -q app.py migrations", "test ! -e LEGACY"]',
)


def _version(app_repo: AppRepo) -> str:
    return str(httpx.get(app_repo.url("dev", "/_deploy/version"), timeout=5).json()["sha"])


def _deploy(app_repo: AppRepo) -> dict[str, str]:
    deployed = app_repo.shiplane("deploy", "dev")
    assert deployed.code == 0, deployed.stdout
    return {"sha": deployed.data["sha"], "release": deployed.data["release"]}


def test_rollback_builds_a_deleted_release_again(app_repo: AppRepo) -> None:
    without_checks(app_repo.path / "shiplane.toml")
    first = _deploy(app_repo)
    app_repo.commit("2.0.0", {"VERSION": "2.0.0\n"})
    second = _deploy(app_repo)
    old = app_repo.root / "dev" / "releases" / first["release"]
    shutil.rmtree(old)

    back = app_repo.shiplane("rollback", "dev")
    assert back.code == 0, back.stdout
    assert back.data["release"] == first["release"]
    assert back.data["rebuilt"] == [first["release"]]
    assert back.data["skipped"] == []
    assert _version(app_repo) == first["sha"] != second["sha"]
    assert (old / "app.py").is_file() and not (old / ".shiplane-rebuilding").exists()
    assert httpx.get(app_repo.url("dev", "/api/notes"), timeout=5).status_code == 200


def test_a_release_that_cannot_be_built_again_is_skipped_or_refused(app_repo: AppRepo) -> None:
    without_checks(app_repo.path / "shiplane.toml")
    first = _deploy(app_repo)
    app_repo.commit("legacy", {"LEGACY": "old build input\n", "VERSION": "2.0.0\n"})
    legacy = _deploy(app_repo)
    config = app_repo.path / "shiplane.toml"
    config.write_text(config.read_text().replace(*STRICT_BUILD))
    (app_repo.path / "LEGACY").unlink()
    app_repo.commit("strict build", {"VERSION": "3.0.0\n"})
    third = _deploy(app_repo)
    gone = app_repo.root / "dev" / "releases" / legacy["release"]
    shutil.rmtree(gone)

    # --to names it: refused, naming the release and why; nothing changed.
    refused = app_repo.shiplane("rollback", "dev", "--to", legacy["release"])
    assert refused.code == 64, refused.stdout
    error = refused.data["error"]
    assert error["step"] == "target"
    assert legacy["release"] in error["message"] and "cannot be built again" in error["message"]
    assert "test ! -e LEGACY" in error["message"]
    assert error["next_action"] == "shiplane rollback dev"  # which skips over it: below
    assert _version(app_repo) == third["sha"]

    # A plain rollback skips over it to the newest release that can serve, and says so.
    back = app_repo.shiplane("rollback", "dev")
    assert back.code == 0, back.stdout
    assert back.data["release"] == first["release"]
    assert [s["release"] for s in back.data["skipped"]] == [legacy["release"]]
    assert any(legacy["release"] in w and "skipped" in w for w in back.data["warnings"])
    assert _version(app_repo) == first["sha"]


def test_nothing_to_roll_back_to_names_the_road_that_works(app_repo: AppRepo) -> None:
    """In a gated env a deploy is refused: the next action of a rollback that has nowhere to
    go is the promotion road, and each of its commands succeeds."""
    without_checks(app_repo.path / "shiplane.toml")
    road = "shiplane deploy dev && shiplane verify dev && shiplane promote prod"
    for expected in ("nothing has been deployed", "no release older"):
        refused = app_repo.shiplane("rollback", "prod")
        assert refused.code == 64, refused.stdout
        assert expected in refused.data["error"]["message"]
        assert refused.data["error"]["next_action"] == road
        for command in road.split(" && "):
            followed = app_repo.shiplane(*command.split()[1:])
            assert followed.code == 0, f"{command}: {followed.stdout}"
    assert _version(app_repo) == app_repo.git("rev-parse", "HEAD")


def test_restart_builds_the_serving_release_again(app_repo: AppRepo) -> None:
    """Deleted under a running server: the instance still runs from the deleted directory,
    and a restart (a fresh instance of what serves) builds it again first."""
    without_checks(app_repo.path / "shiplane.toml")
    deployed = _deploy(app_repo)
    release = app_repo.root / "dev" / "releases" / deployed["release"]
    shutil.rmtree(release)

    restarted = app_repo.shiplane("restart", "dev")
    assert restarted.code == 0, restarted.stdout
    target = next(s for s in restarted.data["steps"] if s["name"] == "target")
    assert "built again" in target["detail"], target
    assert (release / "app.py").is_file()
    assert _version(app_repo) == deployed["sha"]
    assert httpx.get(app_repo.url("dev", "/api/notes"), timeout=5).status_code == 200
