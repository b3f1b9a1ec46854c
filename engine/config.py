"""The run configuration (``--config FILE``, TOML), with the defaults a billing office starts from."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from parsers.errors import UsageError


@dataclass(frozen=True)
class Config:
    payer_refund_days: int = 60  # days to refund a payer that is not Medicare/Medicaid
    patient_refund_days: int = 60  # days to refund a patient
    federal_payers: frozenset[str] = field(default_factory=frozenset)  # payer ids with the 60-day federal rule

    @classmethod
    def load(cls, path: Path | None) -> "Config":
        if path is None:
            return cls()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"{path}: cannot be read ({exc.strerror})") from exc
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{path}: not valid TOML ({exc})") from exc
        unknown = set(data) - {"payer_refund_days", "patient_refund_days", "federal_payers"}
        if unknown:
            raise UsageError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
        try:
            return cls(
                int(data.get("payer_refund_days", 60)),
                int(data.get("patient_refund_days", 60)),
                frozenset(str(p) for p in data.get("federal_payers", [])),
            )
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{path}: {exc}") from exc
