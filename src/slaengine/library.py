"""The set of rulesets and contracts an engine serves, loaded from a directory.

Layout: ``DIR/<ruleset-name>/<version>.yaml`` (any ``*.yaml`` below ``DIR``
is a ruleset version) and ``DIR/contracts.yaml``; files ending in
``.sla-test.yaml`` are regression suites, and ``penalties.yaml``,
``plugins.yaml`` and ``lint.yaml`` hold penalty schemes, plugin settings and
lint silences: all skipped here.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from slaengine.contract import Contract, ContractFile
from slaengine.errors import RulesetError, RulesetErrors, TicketError
from slaengine.ruleset import CompiledRuleset, _pydantic_errors, parse_ruleset
from slaengine.yamlsource import read_yaml_file

CONTRACTS_FILE = "contracts.yaml"
TEST_SUFFIX = ".sla-test.yaml"
#: Files beside the rulesets that are not ruleset versions.
OTHER_FILES = ("penalties.yaml", "plugins.yaml", "lint.yaml")


class RulesetLibrary:
    """Every version of every ruleset, plus the contracts that refer to them."""

    def __init__(self, rulesets: Iterable[CompiledRuleset], contracts: Iterable[Contract] = ()):
        self.versions: dict[str, list[CompiledRuleset]] = {}
        for rs in rulesets:
            self.versions.setdefault(rs.name, []).append(rs)
        for versions in self.versions.values():
            versions.sort(key=lambda r: r.model.effective_from)
        self._starts = {
            name: [r.model.effective_from for r in versions]
            for name, versions in self.versions.items()
        }
        self.contracts = {c.id: c for c in contracts}
        self._by_customer: dict[str, list[Contract]] = {}
        for contract in self.contracts.values():
            self._by_customer.setdefault(contract.customer, []).append(contract)

    def all(self) -> list[CompiledRuleset]:
        """Every loaded version, by name then effective date."""
        return [r for name in sorted(self.versions) for r in self.versions[name]]

    def get(self, name: str, version: str | None = None) -> CompiledRuleset:
        """A named version, or the newest when ``version`` is None."""
        versions = self.versions.get(name)
        if not versions:
            known = ", ".join(sorted(self.versions)) or "(none)"
            raise TicketError(f"unknown ruleset {name!r}; loaded: {known}", "ruleset")
        if version is None:
            return versions[-1]
        for rs in versions:
            if rs.version == version:
                return rs
        known = ", ".join(r.version for r in versions)
        raise TicketError(
            f"ruleset {name!r} has no version {version!r}; loaded: {known}", "version"
        )

    def in_force(self, name: str, at: datetime) -> CompiledRuleset:
        """The version of ``name`` in force at instant ``at``."""
        self.get(name)
        i = bisect.bisect_right(self._starts[name], at)
        if i == 0:
            first = self.versions[name][0]
            raise TicketError(
                f"created_at {at.isoformat()} is before {first.ref} took effect "
                f"({first.model.effective_from.isoformat()})",
                "created_at",
            )
        return self.versions[name][i - 1]

    def contract_for(self, contract_id: str | None, customer: str | None) -> Contract | None:
        """The ticket's contract: by id, else the customer's only contract, else None."""
        if contract_id is not None:
            contract = self.contracts.get(contract_id)
            if contract is None:
                raise TicketError(f"unknown contract {contract_id!r}", "contract")
            return contract
        if customer is not None:
            found = self._by_customer.get(customer, [])
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                ids = ", ".join(c.id for c in found)
                raise TicketError(
                    f"customer {customer!r} has several contracts ({ids}); name one in 'contract'",
                    "contract",
                )
        return None


def load_ruleset_file(path: str | Path) -> CompiledRuleset:
    """Load and validate one ruleset version file; raise RulesetErrors with every problem."""
    try:
        return parse_ruleset(read_yaml_file(Path(path)))
    except RulesetError as exc:
        raise RulesetErrors([exc]) from None


def load_directory(path: str | Path) -> RulesetLibrary:
    """Load every ruleset version and the contracts below ``path``.

    Every problem in every file is collected and raised together as
    RulesetErrors, so a contract manager sees them all at once.
    """
    root = Path(path)
    if not root.is_dir():
        raise RulesetErrors([RulesetError("not a directory", file=str(root))])
    errors: list[RulesetError] = []
    rulesets: list[CompiledRuleset] = []
    contracts: list[Contract] = []
    for file in sorted(root.rglob("*.yaml")) + sorted(root.rglob("*.yml")):
        if file.name.endswith(TEST_SUFFIX) or file.name.startswith(".") or file.name in OTHER_FILES:
            continue
        try:
            if file.name == CONTRACTS_FILE:
                contracts.extend(_load_contracts(file))
            else:
                rulesets.append(parse_ruleset(read_yaml_file(file)))
        except RulesetErrors as exc:
            errors.extend(exc.errors)
        except RulesetError as exc:
            errors.append(exc)
    errors.extend(_check_library(rulesets, contracts))
    if errors:
        raise RulesetErrors(errors)
    if not rulesets:
        raise RulesetErrors([RulesetError("no ruleset files (*.yaml) found", file=str(root))])
    return RulesetLibrary(rulesets, contracts)


def _load_contracts(file: Path) -> list[Contract]:
    located = read_yaml_file(file)
    try:
        return list(ContractFile.model_validate(located.data).contracts)
    except ValidationError as exc:
        raise RulesetErrors(_pydantic_errors(located, exc)) from None


def _check_library(
    rulesets: list[CompiledRuleset], contracts: list[Contract]
) -> list[RulesetError]:
    errors: list[RulesetError] = []
    seen: dict[tuple[str, str], CompiledRuleset] = {}
    starts: dict[tuple[str, datetime], CompiledRuleset] = {}
    for rs in rulesets:
        other = seen.get((rs.name, rs.version))
        if other is not None:
            errors.append(
                RulesetError(
                    f"{rs.model.label} is also defined in {other.source}",
                    file=rs.source,
                    path="version",
                )
            )
        seen[(rs.name, rs.version)] = rs
        start = rs.model.effective_from
        other = starts.get((rs.name, start))
        if other is not None and other.version != rs.version:
            errors.append(
                RulesetError(
                    f"{rs.model.label} takes effect at the same instant ({start.isoformat()}) as "
                    f"version {other.version} ({other.source}); "
                    "give each version its own effective_from",
                    file=rs.source,
                    path="effective_from",
                )
            )
        starts[(rs.name, start)] = rs
    ids: set[str] = set()
    for contract in contracts:
        where = f"contracts[{contract.id}]"
        if contract.id in ids:
            errors.append(
                RulesetError(
                    f"duplicate contract id {contract.id!r}", file=CONTRACTS_FILE, path=where
                )
            )
        ids.add(contract.id)
        versions = [r for r in rulesets if r.name == contract.ruleset]
        if not versions:
            errors.append(
                RulesetError(
                    f"contract {contract.id!r} names unknown ruleset {contract.ruleset!r}",
                    file=CONTRACTS_FILE,
                    path=f"{where}.ruleset",
                )
            )
            continue
        if contract.version and contract.version not in {r.version for r in versions}:
            errors.append(
                RulesetError(
                    f"contract {contract.id!r} pins version {contract.version} "
                    f"of {contract.ruleset!r}, "
                    "which does not exist",
                    file=CONTRACTS_FILE,
                    path=f"{where}.version",
                )
            )
        for rs in versions:
            tiers = rs.model.vocabularies.get("tier")
            if contract.tier and tiers and contract.tier not in tiers.rank:
                errors.append(
                    RulesetError(
                        f"contract {contract.id!r} has tier {contract.tier!r}, "
                        f"not declared in {rs.model.label}",
                        file=CONTRACTS_FILE,
                        path=f"{where}.tier",
                    )
                )
    return errors
