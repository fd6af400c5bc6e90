"""The listener x check table of a policy run: rows are the layout's listeners, columns the checks.

    results = json.loads(Path("results/policy-refbroker.json").read_text())   # written by `run`
    print(render_text(results))        # for a terminal
    print(render_markdown(results))    # for a note or an issue

Pure functions of a results dict (what `python -m conformance.policy run` writes, `RESULTS_SCHEMA`):
no broker, no pytest. A cell is "pass", "fail", "error" (the check could not run: its setup broke),
"skip" (with the reason under the table) or "n.a." (the check does not apply to that kind of listener,
or was made on another listener only: see `CHECKS`). Below the table come the failures with the first
line of their message (what the broker answered), so the table carries its own evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CHECKS", "RESULTS_SCHEMA", "Check", "ResultsError", "cells", "columns", "render_markdown",
           "render_text", "validate"]

RESULTS_SCHEMA = "mqtt-conformance-policy/1"


@dataclass(frozen=True)
class Check:
    """A check of test_policy.py as a table column (one column per variant, e.g. per user)."""

    test: str        # the test function's name
    label: str       # column header; "{variant}" is replaced by the variant (a user name)
    meaning: str     # one line for the legend


#: every check of test_policy.py, in the table's column order (tests/conformance_harness checks that each
#: test function has exactly one entry)
CHECKS = (
    Check("test_anonymous_clients_where_allowed", "anon login",
          "a client without user name is accepted on an open listener, refused (CONNACK 4/5) on an "
          "authenticated one"),
    Check("test_users_log_in_with_their_password_only", "user login",
          "every user logs in with its password; a wrong password is refused (CONNACK 4/5)"),
    Check("test_client_certificate_is_required", "client cert",
          "without a client certificate the handshake fails or no CONNACK 0 comes; with one of the CA: accepted"),
    Check("test_second_ca_listener_shows_a_certificate_of_another_ca", "2nd CA",
          "the certificate does not verify against the main CA and does against the second CA"),
    Check("test_expired_certificate_listener", "expired",
          "a verifying client refuses the certificate as expired (X509 error 10)"),
    Check("test_anonymous_clients_publish_and_subscribe_anywhere", "anon pub/sub",
          "an anonymous client subscribes to TOPIC/# and receives another anonymous client's message"),
    Check("test_anonymous_clients_may_not_subscribe_to_every_topic", "anon # refused",
          "an anonymous subscription to exactly '#' gets SUBACK 0x80"),
    Check("test_user_rights", "{variant} rights",
          "rw reads and writes, ro only reads, wo only writes (an rw observer shows what was delivered)"),
    Check("test_only_the_wildcard_user_subscribes_to_every_topic", "# refused {variant}",
          "a subscription to exactly '#' by rw, ro or wo gets SUBACK 0x80 (only the wildcard user may)"),
    Check("test_wildcard_subscription_lasts_its_lifetime", "wildcard # lifetime",
          "the wildcard user's '#' delivers, and delivers nothing once its lifetime (20 s) has passed; "
          "made on the first authenticated listener only"),
)
_BY_TEST = {check.test: check for check in CHECKS}
NOT_APPLICABLE = "n.a."


class ResultsError(ValueError):
    """A results file that is not a policy run's (the message says what is wrong)."""


def validate(results: object, source: str = "results") -> dict:
    """`results` if it is a policy run's results dict; ResultsError saying what is missing otherwise."""
    if not isinstance(results, dict) or results.get("schema") != RESULTS_SCHEMA:
        raise ResultsError(f"{source} is not the results of a policy run (schema {RESULTS_SCHEMA!r}: written by "
                           "python -m conformance.policy run)")
    for key in ("listeners", "checks"):
        if not isinstance(results.get(key), list):
            raise ResultsError(f"{source}: no {key!r} list")
    return results


def columns(results: dict) -> list[tuple[str, str, str]]:
    """(test, variant, header) of every column, in CHECKS order; checks CHECKS does not know come last
    under their own name (a newer test module than this table)."""
    seen: dict[tuple[str, str], int] = {}  # variants in the order the run made them (rw, ro, wo)
    for record in results["checks"]:
        seen.setdefault((record["check"], record.get("variant") or ""), len(seen))
    order = {check.test: index for index, check in enumerate(CHECKS)}
    found = sorted(seen, key=lambda key: (order.get(key[0], len(order)), key[0], seen[key]))
    return [(test, variant, _header(test, variant)) for test, variant in found]


def _header(test: str, variant: str) -> str:
    check = _BY_TEST.get(test)
    if check is None:
        return test.removeprefix("test_") + (f" {variant}" if variant else "")
    if "{variant}" in check.label:
        return check.label.format(variant=variant)
    return check.label + (f" {variant}" if variant else "")


def cells(results: dict) -> dict[tuple[str, str, str], dict]:
    """(listener id, test, variant) -> the check's record (outcome, message)."""
    return {(record.get("listener") or "", record["check"], record.get("variant") or ""): record
            for record in results["checks"]}


def _rows(results: dict) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, one row per listener (port, public port, transport, cells..., purpose), notes."""
    cols = columns(results)
    found = cells(results)
    header = ["port", "public", "transport", *[h for _, _, h in cols], "what it is for"]
    rows, notes = [], []
    for listener in results["listeners"]:
        row = [str(listener["port"]), str(listener["public_port"]), listener["transport"]]
        for test, variant, head in cols:
            record = found.get((listener["id"], test, variant))
            row.append(record["outcome"] if record else NOT_APPLICABLE)
            if record and record["outcome"] != "pass":
                message = record.get("message") or "(no message)"
                notes.append(f"{listener['id']} / {head}: {record['outcome']}: {message}")
        row.append(listener.get("purpose", ""))
        rows.append(row)
    layout_wide = [record for record in results["checks"] if not record.get("listener")]
    for record in layout_wide:  # a check not tied to a listener (none in test_policy.py today)
        notes.append(f"(no listener) / {_header(record['check'], record.get('variant') or '')}: {record['outcome']}"
                     + (f": {record['message']}" if record.get("message") else ""))
    return header, rows, notes


def _title(results: dict) -> list[str]:
    label = results.get("label") or "policy run"
    broker = results.get("broker_version") or "not told ($SYS/broker/version gave nothing)"
    return [f"Policy checks: {label}",
            f"broker says: {broker}; layout: {results.get('layout', '?')}; host {results.get('host', '?')}; "
            f"run {results.get('started', '?')}"]


def _summary(results: dict) -> str:
    counts: dict[str, int] = {}
    for record in results["checks"]:
        counts[record["outcome"]] = counts.get(record["outcome"], 0) + 1
    order = ["pass", "fail", "error", "skip"]
    parts = [f"{counts[o]} {o}" for o in order if counts.get(o)] + [
        f"{n} {o}" for o, n in sorted(counts.items()) if o not in order]
    return f"{len(results['checks'])} checks: " + (", ".join(parts) or "none ran")


def _legend(results: dict) -> list[str]:
    heads: dict[str, list[str]] = {}
    for test, _variant, head in columns(results):
        heads.setdefault(test, []).append(head)
    return [f"{', '.join(names)}: {_BY_TEST[test].meaning if test in _BY_TEST else test}"
            for test, names in heads.items()]


def render_text(results: dict) -> str:
    """The table for a terminal: aligned columns, then the summary, the failures and the legend."""
    header, rows, notes = _rows(results)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = _title(results) + [""]
    for row in [header, *rows]:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    lines += ["", _summary(results)]
    if notes:
        lines += ["", "not passed:"] + [f"  {note}" for note in notes]
    lines += ["", "columns (n.a.: the check does not apply to that listener):"]
    lines += [f"  {line}" for line in _legend(results)]
    return "\n".join(lines)


def _md(cell: str) -> str:
    return cell.replace("|", "\\|").replace("\n", " ")


def render_markdown(results: dict) -> str:
    """The same table as GitHub-flavoured Markdown (the purpose column first: it is the row's name)."""
    header, rows, notes = _rows(results)
    title = _title(results)
    order = [len(header) - 1, *range(len(header) - 1)]
    lines = [f"**{_md(title[0])}**", "", _md(title[1]), "",
             "| " + " | ".join(_md(header[i]) for i in order) + " |",
             "|" + "|".join("---" for _ in order) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_md(row[i]) if row[i] != "fail" else "**fail**" for i in order) + " |")
    lines += ["", _summary(results)]
    if notes:
        lines += ["", "Not passed:", ""] + [f"- {_md(note)}" for note in notes]
    lines += ["", "Columns (n.a.: the check does not apply to that listener):", ""]
    lines += [f"- {_md(line)}" for line in _legend(results)]
    return "\n".join(lines)
