"""The server's worker pool on real child processes (no server, no deploy): replace with a
grace, a worker that exits or cannot start, pause/resume, scale."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from shiplane.config.redact import Redactor
from shiplane.server.workers import WorkerPool
from shiplane.targets.base import InstanceSpec, WorkerSpec

KEY = ("app", "dev")
SLEEPER = f"{sys.executable} -c 'import time; time.sleep(60)'"
CRASHER = f"{sys.executable} -c 'import sys; print(\"no queue here\", flush=True); sys.exit(4)'"


def spec(tmp_path: Path, release: str, run: str, count: int = 1) -> InstanceSpec:
    return InstanceSpec(
        env="dev",
        release=release,
        release_dir=str(tmp_path),
        sha="a" * 40,
        run="unused {port}",
        log_path=str(tmp_path / f"app-{release}.log"),
        stop_timeout=2.0,
        workers={"worker": WorkerSpec(run=run, count=count)},
    )


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def no_secrets(_spec: InstanceSpec) -> dict[str, str]:
    return {}


def pids(pool: WorkerPool) -> list[int]:
    return [w["pid"] for w in pool.describe(KEY)]


def test_replace_pause_resume_scale(tmp_path: Path) -> None:
    async def scenario() -> None:
        pool = WorkerPool(no_secrets, Redactor())
        try:
            first = await pool.replace(KEY, spec(tmp_path, "1-a", SLEEPER), grace=0.3)
            assert first["ok"] and len(first["started"]) == 1
            [old] = pids(pool)

            crashed = await pool.replace(KEY, spec(tmp_path, "2-b", CRASHER), grace=3)
            assert not crashed["ok"]
            failed = crashed["failed"]
            assert failed["exit_code"] == 4 and "no queue here" in failed["output"]
            assert failed["seconds"] < 3
            assert pids(pool) == [old] and alive(old)  # the old worker runs on

            missing = await pool.replace(KEY, spec(tmp_path, "3-c", "no-such-program-x"), 1)
            assert not missing["ok"] and "could not start" in missing["failed"]["output"]
            assert pids(pool) == [old] and alive(old)

            # The same release again (an undo): kept, not restarted.
            kept = await pool.replace(KEY, spec(tmp_path, "1-a", SLEEPER), grace=0)
            assert kept["kept"] and pids(pool) == [old]

            stopped = await pool.pause(KEY)
            assert len(stopped) == 1 and pids(pool) == [] and not alive(old)
            assert pool.listing(KEY)["paused"]
            resumed = await pool.resume(KEY)
            assert len(resumed) == 1 and alive(pids(pool)[0])

            await pool.scale(KEY, spec(tmp_path, "1-a", SLEEPER, count=3))
            three = pids(pool)
            assert len(three) == 3 and all(alive(p) for p in three)
            await pool.scale(KEY, spec(tmp_path, "1-a", SLEEPER, count=1))
            assert pids(pool) == three[:1]
            assert not any(alive(p) for p in three[1:])

            newer = await pool.replace(KEY, spec(tmp_path, "4-d", SLEEPER), grace=0.3)
            assert newer["ok"] and newer["stopped"] and not alive(three[0])
            assert [w["release"] for w in pool.describe(KEY)] == ["4-d"]
        finally:
            running = pids(pool)
            await pool.close()
        assert not any(alive(p) for p in running)

    asyncio.run(scenario())
