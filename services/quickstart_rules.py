"""The quickstart's retention rules: as many replicas as it runs historicals.

Druid seeds ``_default`` with ``loadForever {"_default_tier": 2}``. The quickstart runs one
historical, so with the seeded rule every segment would lack a replica forever (``loadstatus?full``
counting them, the coordinator warning). Once the coordinator leads, the quickstart sets
``_default`` through the coordinator's rules API, as a Druid user would, with the audit author
``kdruid quickstart``. It only replaces the seeded rule (the one without an audit entry):
``_default`` rules a user set are kept.
"""

from __future__ import annotations

import httpx

from common.metadata import DEFAULT_DATASOURCE, DEFAULT_RULES

RULES_PATH = "/druid/coordinator/v1/rules"
AUTHOR = "kdruid quickstart"


def quickstart_rules(historicals: int) -> list[dict[str, object]]:
    return [{"type": "loadForever", "tieredReplicants": {"_default_tier": historicals}}]


def _loads_forever(rules: object, historicals: int) -> bool:
    """``rules`` is one ``loadForever`` of ``historicals`` replicas (as stored: with defaults)."""
    if not isinstance(rules, list) or len(rules) != 1 or not isinstance(rules[0], dict):
        return False
    rule = rules[0]
    return rule.get("type") == "loadForever" and rule.get("tieredReplicants") == {
        "_default_tier": historicals
    }


async def _get_json(http: httpx.AsyncClient, url: str) -> object:
    resp = await http.get(url)
    if resp.status_code != 200:
        raise RuntimeError(f"GET {url}: {resp.status_code} {resp.text}")
    return resp.json()


async def set_default_rules(http: httpx.AsyncClient, coordinator: str, historicals: int) -> str:
    """Make ``_default`` load ``historicals`` replicas unless a user changed it; says what it did.

    The seeded rule is the one with no audit entry (the seed is not a change anyone made).
    Raises ``RuntimeError`` when the coordinator does not answer as expected.
    """
    url = f"{coordinator}{RULES_PATH}/{DEFAULT_DATASOURCE}"
    current = await _get_json(http, url)
    if _loads_forever(current, historicals):
        return f"_default loads {historicals} replica(s) (already set)"
    history = await _get_json(http, f"{url}/history")
    if current != DEFAULT_RULES or history:
        return "_default rules set by you are kept"
    resp = await http.post(
        url,
        json=quickstart_rules(historicals),
        headers={
            "X-Druid-Author": AUTHOR,
            "X-Druid-Comment": f"the quickstart runs {historicals} historical(s)",
        },
    )
    if resp.status_code != 200:
        raise RuntimeError(f"setting the _default rules failed: {resp.status_code} {resp.text}")
    return f"_default loads {historicals} replica(s), one per historical the quickstart runs"
