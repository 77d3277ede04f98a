"""What a referrer can send to settle an unknown rule: the words of Decision.missing."""

BIRTH_DATE = "the patient's birth date (Patient.birthDate)"
HEADACHE_ONSET = "the date the headache began (Condition.onsetDateTime)"
HEADACHE_DAYS = (
    "headache days per month (Observation headache-days-per-month, with the effectivePeriod it"
    " was counted over)"
)
MIGRAINE_DAYS = "migraine days per month (Observation migraine-days-per-month)"
DEBILITATING_DAYS = (
    "debilitating headache days per month (Observation debilitating-headache-days-per-month)"
)
DURATION = (
    "how long the headaches have been this frequent (an effectivePeriod of at least 90 days on"
    " the headache metrics, or the headache Condition's onset date)"
)
PREVENTIVES = (
    "the preventive medications tried (MedicationStatements with dates, status, and why each"
    " was stopped)"
)
ACUTE_MEDICATION = (
    "acute medication days per month by class (Observation acute-medication-days-per-month,"
    " one component per class)"
)
PREGNANCY_STATUS = (
    "a pregnancy status observed within the last {days} days (Observation LOINC 82810-3),"
    " required before DHE or valproate"
)
UNREADABLE = "the resource at {ref}, referenced but not readable (send it in the referral's Bundle)"
