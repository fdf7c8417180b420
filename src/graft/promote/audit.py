"""The alias audit log: every move of a registry alias, appended as a tag of the registered model, never rewritten.

Each entry is one registered-model tag `graft.audit.NNNNNN` (zero-padded, so tags sort in order) holding a JSON
object: the alias, `from` and `to` versions, `kind` (gate, promote, rollback, approve, reject), `when` (UTC, ISO
8601), `who`, `why` and the `checks` the version passed. An entry is written before the alias moves (it records
the intent); a process killed in between leaves an entry whose `to` is not where the alias points, and `history`
marks it as not applied. Keeping the log in the registry means every reader of the registry (another machine, a
KFP task) sees the same history, and MLflow's own UI lists it under the model's tags.
"""

from __future__ import annotations

import getpass
import json
import socket
from datetime import datetime, timezone

PREFIX = "graft.audit."
CHALLENGER = "challenger"  # the alias a passing candidate gets under gate.approval: required
MAX_CHECKS = 3000  # characters of the checks summary kept per entry (MLflow tag values hold 5,000)


def who() -> str:
    """The person or service account behind a move: user@host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for this uid (a container's random user)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def entries(tags: dict[str, str], alias: str | None = None) -> list[dict]:
    """The log, oldest first, from a registered model's tags (only `alias`'s moves when given)."""
    out = []
    for key in sorted(k for k in tags if k.startswith(PREFIX)):
        try:
            entry = json.loads(tags[key])
        except json.JSONDecodeError:
            entry = {"n": key.removeprefix(PREFIX), "kind": "unreadable", "why": tags[key][:200]}
        if alias is None or entry.get("alias") == alias:
            out.append(entry)
    return out


def entry(tags: dict[str, str], alias: str, kind: str, to: int | None, frm: int | None, why: str,
          checks: str = "", by: str | None = None) -> tuple[str, str]:
    """The (tag key, JSON value) of the next entry after those in `tags`."""
    n = 1 + max((int(k.removeprefix(PREFIX)) for k in tags if k.startswith(PREFIX)), default=0)
    value = {"n": n, "alias": alias, "kind": kind, "from": frm, "to": to,
             "when": now(), "who": by or who(), "why": why,
             "checks": checks[:MAX_CHECKS]}
    return f"{PREFIX}{n:06d}", json.dumps(value)


def rollback_candidates(log: list[dict], current: int) -> list[int]:
    """The versions a rollback may return to, most recent first.

    Walking the log back from its newest entry: each version the alias left (an entry's `from`), except the
    current one and any version that was itself rolled back or rejected. The caller re-checks each in turn and moves
    to the first that passes, so a version that was restored by hand and then replaced is never returned to blindly.
    """
    bad = {e.get("from") for e in log if e.get("kind") == "rollback"} | {e.get("to") for e in log
                                                                         if e.get("kind") == "reject"}
    seen, out = {current}, []
    for e in reversed(log):
        v = e.get("from")
        if v is None or v in seen or v in bad:
            continue
        seen.add(v)
        out.append(v)
    return out


def now() -> str:
    """The time an entry is stamped with: UTC, ISO 8601, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def lines(log: list[dict], where: dict[str, int | None]) -> list[str]:
    """`graft history`: one line per entry, oldest first; the newest move of each alias says if it did not apply.

    `where`: each alias' version now. A challenger that was approved or rejected has left its alias on purpose.
    """
    out, newest = [], {}
    for i, e in enumerate(log):
        newest[e.get("alias")] = i
    decided = {e.get("to") for e in log if e.get("kind") in ("approve", "reject")}
    for i, e in enumerate(log):
        frm = f"v{e['from']}" if e.get("from") is not None else "none"
        to = f"v{e['to']}" if e.get("to") is not None else "none"
        alias, state = e.get("alias"), ""
        moved = e.get("kind") != "reject" and not (alias == CHALLENGER and e.get("to") in decided)
        if newest.get(alias) == i and moved and alias in where and e.get("to") != where[alias]:
            state = " [not applied: the alias is on " + (f"v{where[alias]}" if where[alias] else "no version") + "]"
        checks = f"; checks: {e['checks']}" if e.get("checks") else ""
        out.append(f"#{e.get('n')} {e.get('when', '?')} {e.get('kind', '?'):<8} {e.get('alias', '?')}: {frm} -> {to} "
                   f"by {e.get('who', '?')}: {e.get('why', '')}{checks}{state}")
    return out
