"""The official names of the codes the policy knows (its `displays` section), so staff read
"G43.709 Chronic migraine without aura, not intractable, without status migrainosus" rather
than a bare code. A code the policy does not name is shown as it is, never given a guessed
name: an ICD-10-CM code is named by its nearest named family, and says so."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from referral_service.domain.facts import ICD10_CM, LOINC, RXNORM, SNOMED, normalize_code

# The policy file's key for each code system.
SYSTEMS = {"icd10": ICD10_CM, "snomed": SNOMED, "loinc": LOINC, "rxnorm": RXNORM}
_SYSTEM_NAMES = {ICD10_CM: "ICD-10-CM", SNOMED: "SNOMED CT", LOINC: "LOINC", RXNORM: "RxNorm"}


def shown_code(system: str, code: str) -> str:
    """An ICD-10-CM code as coders write it (dot after the category); others as they are."""
    if system == ICD10_CM:
        code = normalize_code(system, code)
        return f"{code[:3]}.{code[3:]}" if len(code) > 3 else code
    return code


@dataclass(frozen=True, slots=True)
class CodeDisplays:
    by_code: Mapping[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def build(cls, data: Mapping[str, Mapping[str, str]]) -> CodeDisplays:
        """From the schema-loaded `displays` section: {system key: {code: display}}."""
        return cls(
            {
                (SYSTEMS[key], normalize_code(SYSTEMS[key], code)): display.strip()
                for key, names in data.items()
                for code, display in names.items()
            }
        )

    def display(self, system: str, code: str) -> str | None:
        """The code's official name, when the policy has it."""
        return self.by_code.get((system, normalize_code(system, code)))

    def named(self, system: str, code: str) -> str:
        """The code with its official name: `G43.709 Chronic migraine ...`; an ICD-10-CM code
        the policy does not name, with its nearest named family: `G43.719 (in G43.71: ...)`;
        else the code alone, with its system when that is not ICD-10-CM."""
        shown = shown_code(system, code)
        exact = self.display(system, code)
        if exact:
            return f"{shown} {exact}"
        if system == ICD10_CM:
            normalized = normalize_code(system, code)
            for end in range(len(normalized) - 1, 2, -1):
                family = self.by_code.get((system, normalized[:end]))
                if family:
                    return f"{shown} (in {shown_code(system, normalized[:end])}: {family})"
            return shown
        system_name = _SYSTEM_NAMES.get(system)
        return f"{system_name} {shown}" if system_name else shown
