"""``--limit`` host patterns, as Ansible reads them.

A pattern is a list of terms separated by ``:`` or ``,``.  Each term is a host name, a
group name, ``all`` (or ``*``), a glob with ``*`` and ``?`` over host and group names,
or ``~regex`` matched against them.  A term prefixed with ``&`` intersects, one with
``!`` excludes::

    vms                     every host of the group vms
    vm1-frontend,vm5-*      one host and a glob
    vms:!vm3-redis          the group, less one host
    vms:&canary             the hosts in both groups
    &canary                 a lone & or ! term starts from all hosts

As in Ansible, plain terms are applied first, then ``&`` terms, then ``!`` terms,
whatever order they are written in.  Unlike Ansible, a term that matches nothing is an
error rather than a warning: a typo in ``--limit`` must never quietly push to fewer
hosts, or to all but the one meant to be excluded.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from typing import TYPE_CHECKING

from controller.errors import InventoryError

if TYPE_CHECKING:
    from controller.inventory import Host, Inventory

_SEPARATORS = re.compile(r"[:,]")


def select_hosts(inventory: Inventory, pattern: str | None) -> tuple[Host, ...]:
    """The hosts of ``inventory`` that ``pattern`` selects, in inventory order.

    None or an empty pattern selects every host.  Raises InventoryError when a term
    matches no host and no group, naming the term and the closest names.
    """
    terms = split_pattern(pattern or "")
    if not terms:
        return inventory.hosts

    plain = [term for term in terms if term[0] not in "&!"]
    intersections = [term[1:] for term in terms if term[0] == "&"]
    exclusions = [term[1:] for term in terms if term[0] == "!"]

    chosen: set[str] = set()
    for term in plain or ["all"]:
        chosen |= _match_term(inventory, term)
    for term in intersections:
        chosen &= _match_term(inventory, term)
    for term in exclusions:
        chosen -= _match_term(inventory, term)

    return tuple(host for host in inventory.hosts if host.name in chosen)


def split_pattern(pattern: str) -> list[str]:
    """The terms of a pattern, whitespace and empty terms dropped."""
    return [term.strip() for term in _SEPARATORS.split(pattern) if term.strip()]


def _match_term(inventory: Inventory, term: str) -> set[str]:
    if not term:
        raise InventoryError("a lone & or ! in --limit; follow it with a host or group name")
    if term in ("all", "*"):
        return {host.name for host in inventory.hosts}

    host_names = [host.name for host in inventory.hosts]
    if term.startswith("~"):
        try:
            expression = re.compile(term[1:])
        except re.error as exc:
            message = f"--limit {term!r}: not a valid regular expression: {exc}"
            raise InventoryError(message) from exc
        names = [name for name in [*host_names, *inventory.groups] if expression.match(name)]
    elif "[" in term:
        raise InventoryError(
            f"--limit {term!r}: subscripts such as group[0] are not supported; "
            "name the hosts instead"
        )
    elif "*" in term or "?" in term:
        names = fnmatch.filter([*host_names, *inventory.groups], term)
    else:
        names = [term] if term in inventory.groups or term in host_names else []

    if not names:
        raise InventoryError(_no_match(inventory, term, host_names))

    selected: set[str] = set()
    for name in names:
        if name in inventory.groups:
            selected.update(inventory.groups[name])
        else:
            selected.add(name)
    return selected


def _no_match(inventory: Inventory, term: str, host_names: list[str]) -> str:
    candidates = [*host_names, *inventory.groups]
    close = difflib.get_close_matches(term, candidates, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return (
        f"--limit {term!r} matches no host or group in {inventory.path}; {hint}"
        "run `hotconf inventory` to list them"
    )
