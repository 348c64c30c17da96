"""The human summary of a run: step counts, metrics, gate verdicts, what was logged."""

from __future__ import annotations

from typing import Any


def summary_text(payload: dict[str, Any]) -> str:
    steps = payload["steps"].values()
    counts = {
        s: sum(1 for step in steps if step.get("status") == s)
        for s in ("ran", "cached", "failed", "skipped")
    }
    lines = []
    if counts["ran"] == 0 and counts["failed"] == 0 and counts["cached"]:
        lines.append(f"nothing to do: all {counts['cached']} steps cached")
    else:
        lines.append(
            f"{counts['ran']} ran, {counts['cached']} cached, {counts['failed']} failed, "
            f"{counts['skipped']} skipped"
        )
    for model, metrics in sorted(payload["metrics"].items()):
        overall = (metrics or {}).get("overall", {})
        shown = ", ".join(
            f"{k}={v:.4f}" for k, v in sorted(overall.items()) if isinstance(v, float)
        )
        lines.append(f"metrics {model}: {shown}")
    for gate, decision in sorted(payload["decisions"].items()):
        if not decision:
            continue
        verdict = "PASSED" if decision.get("passed") else "FAILED"
        step = payload["steps"].get(f"{decision.get('kind', 'gate')}:{gate}") or {}
        # a cached decision was made by an earlier run, against the registry as it was then
        # (a re-run after registering compares the model with itself: the same decision)
        reused = " (reused from the cache: decided by an earlier run)"
        lines.append(f"gate {gate}: {verdict}{reused if step.get('status') == 'cached' else ''}")
        for check in decision.get("checks", []):
            mark = "skip" if check.get("skipped") else "ok " if check.get("passed") else "FAIL"
            text = str(check.get("check"))
            slice_value = check.get("slice_value")
            where = (
                f" [{check['slice']}={slice_value}]"
                if slice_value is not None and "=" not in text
                else ""
            )
            value, bound = check.get("value"), check.get("bound")
            numbers = (
                f"value {value:.4f} bound {bound:.4f}"
                if isinstance(value, float) and isinstance(bound, float)
                else (check.get("note") or "")
            )
            if step.get("status") == "cached" and numbers.startswith("no production model"):
                numbers += " when it was decided"
            lines.append(f"  {mark} {text}{where}: {numbers}")
    for logged in payload.get("mlflow") or []:
        version = logged["model_version"]
        registered = f", registered as version {version}" if version else ""
        lines.append(f"mlflow {logged['model']}: run {logged['run_id']}{registered}")
    if payload.get("deploy") is False:
        lines.append("experiment: no deployment ran (settings.deploy is false)")
    if payload["error"]:
        lines.append(f"error: {error_text(payload['error'])}")
    if payload["run_id"]:
        lines.append(f"run {payload['run_id']}: {payload['status']}")
    return "\n".join(lines)


def error_text(error: Any) -> str:
    """A run's error, as a run record holds it ({node, message}) or as a runner reports it."""
    if isinstance(error, dict):
        node = error.get("node")
        return f"{node}: {error.get('message')}" if node else str(error.get("message"))
    return str(error)


def registry_event_text(event: dict[str, Any]) -> str:
    """One line of a registered model's history: when, who, what."""
    what = str(event.get("event"))
    if "to_version" in event:
        start = event.get("from_version")
        moved = f"{'v' + str(start) if start else '-'} -> v{event['to_version']}"
        what += f" {event.get('alias')}: {moved}"
    else:
        what += f" v{event.get('version')}"
    reason = event.get("reason")
    if isinstance(reason, dict) and reason.get("monitor"):
        what += f", as monitor {reason['monitor']} passed (report {reason.get('report')})"
    return f"{event.get('timestamp')} {event.get('user')}: {what}"
