"""${uuid}, ${random}, ${timestamp} and captures in check values."""

from __future__ import annotations

import time

from shiplane.verify.values import fill, for_check, fresh


def test_one_set_of_values_per_run_and_fresh_on_the_next() -> None:
    first, second = fresh(), fresh()
    assert first["uuid"] != second["uuid"]
    assert abs(int(first["timestamp"]) - time.time()) < 5
    body = {"user": "u-${uuid}", "tags": ["${random}", 3], "at": "${timestamp}"}
    filled = fill(body, first)
    assert filled == {
        "user": f"u-{first['uuid']}",
        "tags": [first["random"], 3],
        "at": first["timestamp"],
    }


def test_captures_win_and_unknown_names_stay() -> None:
    given = for_check({"uuid": "captured", "note_id": 7})
    assert fill("/n/${note_id}/${uuid}/${missing}", given) == "/n/7/captured/${missing}"
