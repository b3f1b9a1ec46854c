"""The run configuration (``--config FILE``, TOML), with the defaults a billing office starts from.

The top-level keys are those of ``edirecon run`` (refund deadlines, federal payers).  The tables
``[refunds]``, ``[providers."NPI"]``, ``[payers."ID"]`` and ``[cms838]`` configure the refund
workflow and the reports (docs/rules.md, "Configuration").  Amounts are written as strings ("20.00") or
whole numbers, never as TOML floats, since money is never a float.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from edirecon.errors import UsageError
from edirecon.money import ZERO
from edirecon.money import parse as parse_amount


@dataclass(frozen=True)
class AutoApproval:
    """A rule approving a new refund without a person: every condition given must hold."""

    name: str
    below: Decimal | None = None  # the amount is strictly below this
    reasons: frozenset[str] = frozenset()  # DUPLICATE_PAYMENT, ... (any when empty)
    payers: frozenset[str] = frozenset()  # payer ids (any when empty)
    payee_types: frozenset[str] = frozenset()  # payer, patient (any when empty)

    def applies(self, amount: Decimal, reason: str, payer_id: str, payee_type: str) -> bool:
        return (
            (self.below is None or amount < self.below)
            and (not self.reasons or reason in self.reasons)
            and (not self.payers or payer_id in self.payers)
            and (not self.payee_types or payee_type in self.payee_types)
        )


@dataclass(frozen=True)
class RefundRules:
    """``[refunds]``: how new refunds enter the workflow, and when a sent one needs a look."""

    patient_hold_below: Decimal = ZERO  # patient credits below this are held on the account (0: none)
    escheatment_days: int = 1095  # a patient refund not cashed this long after it was sent: unclaimed property
    auto_approve: tuple[AutoApproval, ...] = ()


@dataclass(frozen=True)
class Party:
    """A letterhead or an address: ``[providers."NPI"]`` (name, address, contact, phone) and
    ``[payers."ID"]`` (where refunds to that payer are mailed)."""

    name: str = ""
    address: tuple[str, ...] = ()
    contact: str = ""
    phone: str = ""


@dataclass(frozen=True)
class Cms838Settings:
    """``[cms838]``: the heading of the Medicare Credit Balance Report."""

    provider_number: str = ""  # the six-digit Medicare provider number (PTAN/CCN)
    provider_name: str = ""  # default: the letterhead of the billing NPI
    contact: str = ""
    phone: str = ""
    cost_reports_closed_through: date | None = None  # services up to this day belong to settled cost reports
    medicare_payers: frozenset[str] = frozenset()  # payer ids that are Medicare whatever the filing indicator


@dataclass(frozen=True)
class Config:
    payer_refund_days: int = 60  # days to refund a payer that is not Medicare/Medicaid
    patient_refund_days: int = 60  # days to refund a patient
    federal_payers: frozenset[str] = field(default_factory=frozenset)  # payer ids with the 60-day federal rule
    refunds: RefundRules = field(default_factory=RefundRules)
    providers: dict[str, Party] = field(default_factory=dict, hash=False)
    payers: dict[str, Party] = field(default_factory=dict, hash=False)
    cms838: Cms838Settings = field(default_factory=Cms838Settings)

    @classmethod
    def load(cls, path: Path | None) -> Config:
        if path is None:
            return cls()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"{path}: cannot be read ({exc.strerror})") from exc
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{path}: not valid TOML ({exc})") from exc
        _known(path, "", data, {"payer_refund_days", "patient_refund_days", "federal_payers", "refunds", "providers", "payers", "cms838"})
        try:
            return cls(
                int(data.get("payer_refund_days", 60)),
                int(data.get("patient_refund_days", 60)),
                frozenset(str(p) for p in data.get("federal_payers", [])),
                _refunds(path, data.get("refunds", {})),
                {str(k): _party(path, f"providers.{k}", v) for k, v in _table(path, "providers", data.get("providers", {})).items()},
                {str(k): _party(path, f"payers.{k}", v) for k, v in _table(path, "payers", data.get("payers", {})).items()},
                _cms838(path, data.get("cms838", {})),
            )
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{path}: {exc}") from exc


def _known(path: Path, where: str, table: dict[str, Any], keys: set[str]) -> None:
    unknown = set(table) - keys
    if unknown:
        raise UsageError(f"{path}: unknown setting(s) {', '.join(f'{where}{k}' for k in sorted(unknown))}")


def _table(path: Path, where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UsageError(f"{path}: {where} must be a table")
    return value


def amount(path: Path, where: str, value: Any) -> Decimal:
    """A configured amount: a string ("20.00") or a whole number; a TOML float is refused."""
    if isinstance(value, bool) or isinstance(value, float) or not isinstance(value, (str, int)):
        raise UsageError(f'{path}: {where} must be an amount written as a string ("20.00") or a whole number, not {value!r}')
    result = parse_amount(str(value).strip())
    if result is None:
        raise UsageError(f"{path}: {where} is not an amount: {value!r}")
    if result < 0:
        raise UsageError(f"{path}: {where} must be zero or more: {value!r}")
    return result


def _strings(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset([value])
    return frozenset(str(v) for v in value)


def _refunds(path: Path, value: Any) -> RefundRules:
    table = _table(path, "refunds", value)
    _known(path, "refunds.", table, {"patient_hold_below", "escheatment_days", "auto_approve"})
    rules = []
    for i, rule in enumerate(table.get("auto_approve", []), start=1):
        where = f"refunds.auto_approve[{i}]"
        rule = _table(path, where, rule)
        _known(path, where + ".", rule, {"name", "below", "reasons", "payers", "payee_types"})
        rules.append(
            AutoApproval(
                str(rule.get("name", f"rule {i}")),
                amount(path, where + ".below", rule["below"]) if "below" in rule else None,
                _strings(rule.get("reasons", [])),
                _strings(rule.get("payers", [])),
                _strings(rule.get("payee_types", [])),
            )
        )
    days = int(table.get("escheatment_days", 1095))
    if days < 1:
        raise UsageError(f"{path}: refunds.escheatment_days must be at least 1")
    return RefundRules(amount(path, "refunds.patient_hold_below", table.get("patient_hold_below", "0.00")), days, tuple(rules))


def _party(path: Path, where: str, value: Any) -> Party:
    table = _table(path, where, value)
    _known(path, where + ".", table, {"name", "address", "contact", "phone"})
    address = table.get("address", [])
    return Party(
        str(table.get("name", "")),
        (address,) if isinstance(address, str) else tuple(str(a) for a in address),
        str(table.get("contact", "")),
        str(table.get("phone", "")),
    )


def _cms838(path: Path, value: Any) -> Cms838Settings:
    table = _table(path, "cms838", value)
    _known(path, "cms838.", table, {"provider_number", "provider_name", "contact", "phone", "cost_reports_closed_through", "medicare_payers"})
    closed = table.get("cost_reports_closed_through")
    if closed is not None and not isinstance(closed, date):
        closed = date.fromisoformat(str(closed))
    return Cms838Settings(
        str(table.get("provider_number", "")),
        str(table.get("provider_name", "")),
        str(table.get("contact", "")),
        str(table.get("phone", "")),
        closed,
        _strings(table.get("medicare_payers", [])),
    )
