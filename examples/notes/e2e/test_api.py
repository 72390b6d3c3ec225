"""The app's own end-to-end suite; shiplane runs it against a candidate (SHIPLANE_BASE_URL)."""

import os

import httpx

BASE = os.environ.get("SHIPLANE_BASE_URL", "http://127.0.0.1:5000")


def test_create_then_list() -> None:
    created = httpx.post(f"{BASE}/api/notes", json={"title": "e2e note"}, timeout=10)
    assert created.status_code == 201
    notes = httpx.get(f"{BASE}/api/notes", timeout=10).json()["notes"]
    assert any(note["id"] == created.json()["id"] for note in notes)


def test_missing_title_is_rejected() -> None:
    response = httpx.post(f"{BASE}/api/notes", json={}, timeout=10)
    assert response.status_code == 400


def test_home_page_lists_notes() -> None:
    assert "<h1>Notes</h1>" in httpx.get(f"{BASE}/", timeout=10).text
