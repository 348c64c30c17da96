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
        lines.append(f"gate {gate}: {verdict}")
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
            lines.append(f"  {mark} {text}{where}: {numbers}")
    for logged in payload.get("mlflow") or []:
        version = logged["model_version"]
        registered = f", registered as version {version}" if version else ""
        lines.append(f"mlflow {logged['model']}: run {logged['run_id']}{registered}")
    if payload.get("deploy") is False:
        lines.append("experiment: no deployment ran (settings.deploy is false)")
    if payload["error"]:
        lines.append(f"error: {payload['error']}")
    if payload["run_id"]:
        lines.append(f"run {payload['run_id']}: {payload['status']}")
    return "\n".join(lines)
