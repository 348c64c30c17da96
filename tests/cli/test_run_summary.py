"""The summary of a run as `run` and `runs show` print it."""

from __future__ import annotations

from mlcompile.cli.summary import error_text, registry_event_text, summary_text


def _payload(status: str) -> dict[str, object]:
    check = {"check": "rmse <= production + 1", "passed": True}
    return {
        "steps": {"gate:quality": {"status": status}, "train:m": {"status": "ran"}},
        "metrics": {},
        "decisions": {"quality": {"passed": True, "checks": [{**check, "note": _NOTE}]}},
        "error": {"node": "train:m", "message": "boom"},
        "run_id": None,
    }


_NOTE = "no production model to compare with"


def test_a_cached_gate_says_its_decision_is_an_earlier_runs() -> None:
    cached = summary_text(_payload("cached"))
    assert "gate quality: PASSED (reused from the cache: decided by an earlier run)" in cached
    assert f"{_NOTE} when it was decided" in cached
    fresh = summary_text(_payload("ran"))
    assert "gate quality: PASSED\n" in fresh and "when it was decided" not in fresh
    assert "2 ran, 0 cached, 0 failed, 0 skipped" in fresh


def test_errors_and_registry_events_read_as_text() -> None:
    assert "error: train:m: boom" in summary_text(_payload("ran"))
    assert error_text({"node": None, "message": "make failed"}) == "make failed"
    moved = {"event": "promote", "alias": "production", "from_version": None, "to_version": 2}
    line = registry_event_text({**moved, "timestamp": "T", "user": "ana"})
    assert line == "T ana: promote production: - -> v2"
    assert "None" not in line and "{" not in line
