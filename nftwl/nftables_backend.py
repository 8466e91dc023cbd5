"""The nftables backend: libnftables through its official Python binding, JSON only.

Every transaction is one ``json_cmd`` call, which libnftables sends to the kernel as one netlink
batch: the kernel applies all of it or none of it. No nft text is ever built from input; every
element is rendered from typed values.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from typing import Any

from nftwl.errors import BackendError, TransactionError
from nftwl.model import Action, IPv4Network, IPv6Network, PortRange, Proto
from nftwl.ruleset import (
    CHAIN,
    ChainSpec,
    Element,
    RuleSpec,
    SetKind,
    SetSpec,
    SetState,
    TableState,
)
from nftwl.transaction import (
    AddChain,
    AddElements,
    AddRule,
    AddSet,
    AddTable,
    DeleteChain,
    DeleteElements,
    DeleteSet,
    FlushChain,
    FlushSet,
    Op,
    Transaction,
)

FAMILY = "inet"
_KINDS = {(k.key_type.replace(" ", ""), k.interval): k for k in SetKind}
_PROTO_NUMBERS = {6: Proto.TCP, 17: Proto.UDP}
RULE_TAG_PREFIX = "nftwl/"
_OUR_SET = re.compile(r"\A[A-Za-z][A-Za-z0-9_]{0,31}_(v4_hosts|v4_nets|v6_hosts|v6_nets|ports)\Z")

JSON = dict[str, Any]

_LIBNFTABLES_LOCK = threading.Lock()
"""libnftables 1.0.6 is not thread-safe even across contexts: two contexts listing sets with
concatenated types at once abort the process (``json.c: set_dtype_json: Assertion``). So every
call in the process is serialised, not just the calls on one context."""


class NftablesBackend:
    """Owns one ``inet`` table through libnftables."""

    def __init__(self, table: str) -> None:
        self.table = table
        try:
            import nftables
        except ImportError as exc:  # pragma: no cover - depends on the host
            raise BackendError(
                "the libnftables Python binding is missing: pip install pip-nftables"
            ) from exc
        try:
            self._nft = nftables.Nftables()
        except OSError as exc:  # pragma: no cover - depends on the host
            raise BackendError(
                f"cannot load libnftables ({exc}); on Debian: apt-get install libnftables1"
            ) from exc
        self._nft.set_json_output(True)
        self._nft.set_handle_output(False)
        # Not even separate contexts are safe for concurrent use: one lock for the process.
        self._lock = _LIBNFTABLES_LOCK

    # -- reading -----------------------------------------------------------------------------

    def _run(self, commands: list[JSON]) -> Any:
        with self._lock:
            rc, output, error = self._nft.json_cmd({"nftables": commands})
        if rc != 0:
            raise TransactionError((error or "libnftables failed without a message").strip())
        return output

    def _list_table(self) -> list[JSON] | None:
        try:
            out = self._run([{"list": {"table": {"family": FAMILY, "name": self.table}}}])
        except TransactionError as exc:
            text = str(exc)
            if "No such file or directory" in text:
                return None
            if "Operation not permitted" in text:
                raise BackendError(
                    f"reading table inet {self.table}: {text} (run as root)"
                ) from None
            raise
        items: list[JSON] = out.get("nftables", []) if isinstance(out, dict) else []
        return items

    def read(self) -> TableState | None:
        items = self._list_table()
        if items is None:
            return None
        state = TableState(name=self.table)
        rules: list[str | None] = []
        others: list[str] = []
        ours = foreign_objects = False
        for item in items:
            if "set" in item:
                parsed = _parse_set(item["set"])
                state.sets[parsed.spec.name] = parsed
            elif "chain" in item:
                c = item["chain"]
                if c["name"] == CHAIN and c.get("hook") == "input" and c.get("type") == "filter":
                    state.chain = ChainSpec(
                        priority=int(c.get("prio", 0)), policy=str(c.get("policy", "accept"))
                    )
                elif c["name"] == CHAIN:
                    state.chain = ChainSpec(hook=str(c.get("hook", "")), priority=-1000)
                else:
                    others.append(c["name"])
            elif "rule" in item:
                comment = item["rule"].get("comment")
                ours = ours or str(comment).startswith(RULE_TAG_PREFIX)
                if item["rule"].get("chain") == CHAIN:
                    rules.append(comment)
            elif not {"table", "metainfo"} & item.keys():
                foreign_objects = True  # a map, counter, quota, flowtable, ct object, ...
        state.rules = tuple(rules)
        state.other_chains = tuple(others)
        # A table nftwl did not make must never be taken over (its rules would be flushed): it
        # is ours if one of its rules carries our tag, or if it holds nothing that nftwl would
        # not make itself: sets named the way nftwl names them and an empty "input" chain (what
        # is left after "nft flush table" or "flush chain", or a hand "delete chain").
        state.owned = ours or (
            not others
            and not rules
            and not foreign_objects
            and all(_OUR_SET.match(name) for name in state.sets)
        )
        return state

    def present(self) -> bool:
        # "list chains", not "list chain": listing one chain makes libnftables fetch every set
        # element first (0.4 s at 100k blocks); the chain list is a few milliseconds.
        out = self._run([{"list": {"chains": {"family": FAMILY}}}])
        items = out.get("nftables", []) if isinstance(out, dict) else []
        return any(
            i.get("chain", {}).get("table") == self.table and i["chain"].get("name") == CHAIN
            for i in items
        )

    def counters(self) -> dict[str, tuple[int, int]]:
        items = self._list_table() or []
        result: dict[str, tuple[int, int]] = {}
        for item in items:
            rule = item.get("rule")
            if not rule or rule.get("chain") != CHAIN:
                continue
            for expr in rule.get("expr", []):
                if isinstance(expr, dict) and isinstance(expr.get("counter"), dict):
                    c = expr["counter"]
                    result[str(rule.get("comment"))] = (int(c["packets"]), int(c["bytes"]))
        return result

    # -- writing -----------------------------------------------------------------------------

    def apply(self, tx: Transaction) -> None:
        if not tx:
            return
        self._run([self._render(op) for op in tx.ops])

    def render_json(self, tx: Transaction) -> JSON:
        """The JSON document :meth:`apply` would send (for --dry-run and tests)."""
        return {"nftables": [self._render(op) for op in tx.ops]}

    def _render(self, op: Op) -> JSON:
        t: JSON = {"family": FAMILY, "table": self.table}
        match op:
            case AddTable():
                return {"add": {"table": {"family": FAMILY, "name": self.table}}}
            case AddChain(chain=c):
                return {
                    "add": {
                        "chain": {
                            **t,
                            "name": c.name,
                            "type": "filter",
                            "hook": c.hook,
                            "prio": c.priority,
                            "policy": c.policy,
                        }
                    }
                }
            case FlushChain(chain=c):
                return {"flush": {"chain": {**t, "name": c}}}
            case DeleteChain(chain=c):
                return {"delete": {"chain": {**t, "name": c}}}
            case AddRule(chain=c, rule=r):
                return {"add": {"rule": {**t, "chain": c, "comment": r.comment, "expr": _expr(r)}}}
            case AddSet(spec=s):
                body: JSON = {**t, "name": s.name, "type": _key_type(s.kind)}
                if s.kind.interval:
                    body["flags"] = ["interval"]
                return {"add": {"set": body}}
            case FlushSet(set=s):
                return {"flush": {"set": {**t, "name": s}}}
            case DeleteSet(set=s):
                return {"delete": {"set": {**t, "name": s}}}
            case AddElements(set=s, elements=e):
                return {"add": {"element": {**t, "name": s, "elem": [_elem(x) for x in e]}}}
            case DeleteElements(set=s, elements=e):
                return {"delete": {"element": {**t, "name": s, "elem": [_elem(x) for x in e]}}}
        raise TypeError(f"unknown operation {op!r}")  # pragma: no cover


def _key_type(kind: SetKind) -> str | list[str]:
    parts = [p.strip() for p in kind.key_type.split(".")]
    return parts[0] if len(parts) == 1 else parts


def _elem(e: Element) -> Any:
    if isinstance(e, PortRange):
        port: Any = e.low if e.low == e.high else {"range": [e.low, e.high]}
        return {"concat": [e.proto.value, port]}
    if e.num_addresses == 1:
        return str(e.network_address)
    return {"prefix": {"addr": str(e.network_address), "len": e.prefixlen}}


def _match(op: str, left: JSON, right: Any) -> JSON:
    return {"match": {"op": op, "left": left, "right": right}}


_TH_DPORT = {"protocol": "th", "field": "dport"}


def _expr(rule: RuleSpec) -> list[JSON]:
    if rule.whitelist is None:
        return [
            _match("in", {"ct": {"key": "state"}}, ["established", "related"]),
            {"accept": None},
        ]
    hosts, nets, ports = rule.set_names()
    saddr = {"payload": {"protocol": "ip" if rule.family == "ipv4" else "ip6", "field": "saddr"}}
    verdict: JSON = {"drop": None} if rule.action is Action.DROP else {"reject": None}
    head = [_match("==", {"meta": {"key": "nfproto"}}, rule.family)]
    if rule.tcp_reset:
        head.append(_match("==", {"meta": {"key": "l4proto"}}, "tcp"))
        verdict = {"reject": {"type": "tcp reset"}}
    return [
        *head,
        _match(
            "==",
            {
                "concat": [
                    {"meta": {"key": "l4proto"}},
                    {"payload": {"protocol": "th", "field": "dport"}},
                ]
            },
            f"@{ports}",
        ),
        _match("!=", saddr, f"@{hosts}"),
        _match("!=", saddr, f"@{nets}"),
        {"counter": None},
        verdict,
    ]


def _parse_set(body: JSON) -> SetState:
    key = body.get("type")
    key_s = ".".join(key) if isinstance(key, list) else str(key)
    interval = "interval" in body.get("flags", [])
    kind = _KINDS.get((key_s, interval))
    if kind is None:
        # A set nftwl would never create (hand-made): visible to the planner, which replaces
        # or deletes it.
        return SetState(SetSpec(str(body["name"]), SetKind.V4_NETS), canonical=False, foreign=True)
    elements: set[Element] = set()
    canonical = True
    for raw in body.get("elem", []):
        try:
            parsed, exact = _parse_elem(raw, kind)
        except (ValueError, KeyError, TypeError):
            canonical = False
            continue
        elements.update(parsed)
        canonical = canonical and exact
    return SetState(SetSpec(str(body["name"]), kind), frozenset(elements), canonical)


def _parse_elem(raw: Any, kind: SetKind) -> tuple[list[Element], bool]:
    """A live element -> (typed elements, whether nftwl would have written it exactly so)."""
    if isinstance(raw, dict) and "elem" in raw:  # element with counter/timeout/comment
        raw = raw["elem"]["val"]
    if kind is SetKind.PORTS:
        proto_raw, port = raw["concat"]
        proto = _PROTO_NUMBERS[proto_raw] if isinstance(proto_raw, int) else Proto(proto_raw)
        if isinstance(port, dict):
            low, high = port["range"]
            return [PortRange(proto, int(low), int(high))], True
        return [PortRange(proto, int(port), int(port))], True
    if isinstance(raw, str):
        return [ipaddress.ip_network(raw)], True
    if "prefix" in raw:
        p = raw["prefix"]
        return [ipaddress.ip_network(f"{p['addr']}/{p['len']}")], True
    if "range" in raw:
        first, last = (ipaddress.ip_address(x) for x in raw["range"])
        nets: list[IPv4Network | IPv6Network] = list(ipaddress.summarize_address_range(first, last))
        # The kernel shows a /0 or a prefix it merged as a range; one block is still exact.
        return list(nets), len(nets) == 1
    raise ValueError(f"unexpected element {raw!r}")
