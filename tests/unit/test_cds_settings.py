"""The CDS Hooks settings: the EHR time budget and the fhirServer allow-list, read from the
environment, with one spelling for a FHIR base URL so an entry and a call's fhirServer match."""

from __future__ import annotations

import pytest

from referral_service.config import Settings, SettingsError, fhir_base
from referral_service.services.assessment.cds_ehr import (
    NO_SERVER,
    NOT_ALLOWED,
    EhrAccess,
    ehr_access,
)


def test_defaults_are_a_short_budget_and_no_server_read() -> None:
    settings = Settings.from_env(environ={})
    assert settings.cds_ehr_budget_seconds == 2.0
    assert settings.cds_fhir_server_allowlist == ()


def test_the_budget_is_read_and_bounded() -> None:
    env = {"REFERRAL_CDS_EHR_BUDGET_SECONDS": "1.5"}
    assert Settings.from_env(environ=env).cds_ehr_budget_seconds == 1.5
    for bad in ("0", "-1", "11", "soon"):
        with pytest.raises(SettingsError, match="REFERRAL_CDS_EHR_BUDGET_SECONDS"):
            Settings.from_env(environ={"REFERRAL_CDS_EHR_BUDGET_SECONDS": bad})


def test_allow_list_entries_are_kept_in_one_spelling() -> None:
    env = {
        "REFERRAL_CDS_FHIR_SERVER_ALLOWLIST": "HTTPS://EHR.Example.org:443/fhir/R4/ , "
        "http://10.0.0.5:8080/fhir"
    }
    assert Settings.from_env(environ=env).cds_fhir_server_allowlist == (
        "https://ehr.example.org/fhir/R4",
        "http://10.0.0.5:8080/fhir",
    )
    for bad in ("ehr.example.org/fhir", "ftp://ehr.example.org", "https://u:p@ehr.example.org"):
        with pytest.raises(SettingsError, match="REFERRAL_CDS_FHIR_SERVER_ALLOWLIST"):
            Settings.from_env(environ={"REFERRAL_CDS_FHIR_SERVER_ALLOWLIST": bad})


def test_fhir_base_keeps_the_path_and_a_non_default_port() -> None:
    assert fhir_base("https://ehr.example.org:8443/fhir/") == "https://ehr.example.org:8443/fhir"
    assert fhir_base("http://[::1]:8080/fhir") == "http://[::1]:8080/fhir"


def test_only_an_exactly_listed_server_is_read_and_given_the_token() -> None:
    allow = ("https://ehr.example.org/fhir",)
    grant = {"access_token": "t"}
    assert ehr_access("https://EHR.example.org/fhir/", grant, allow) == (
        EhrAccess("https://ehr.example.org/fhir", "t"),
        "",
    )
    for other in (
        "https://ehr.example.org/fhir/../admin",
        "https://ehr.example.org/fhir2",
        "https://ehr.example.org.evil.test/fhir",
        "http://ehr.example.org/fhir",
        "http://127.0.0.1:8080/fhir",
        "https://ehr.example.org/fhir?x=1",
    ):
        assert ehr_access(other, grant, allow) == (None, NOT_ALLOWED), other
    assert ehr_access(None, None, allow) == (None, NO_SERVER)
