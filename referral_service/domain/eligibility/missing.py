"""What a referrer can send to settle an unknown rule: the words of Decision.missing, in the
words of a referral letter (no code system, no FHIR element), so whoever reads the Task can
answer from the chart."""

BIRTH_DATE = "the patient's birth date"
HEADACHE_ONSET = "when the headaches began (a date; the month and year will do)"
HEADACHE_DAYS = (
    "headache days per month: on how many days a month the patient has a headache, and over"
    " which weeks or months that was counted"
)
MIGRAINE_DAYS = "migraine days per month: on how many days a month the headache is a migraine"
DEBILITATING_DAYS = (
    "debilitating headache days per month: on how many days a month a headache stops the"
    " patient from working, studying or doing daily tasks"
)
DURATION = (
    "how long the headaches have been this frequent (3 months or more makes them chronic), or"
    " when they began"
)
PREVENTIVES = (
    "the preventive medicines tried: each drug, when it was started and stopped, and whether it"
    " was stopped for lack of effect or for side effects"
)
ACUTE_MEDICATION = (
    "acute medication days per month: on how many days a month the patient takes each kind of"
    " acute headache medicine (triptans, ergots, opioids, combination painkillers, simple"
    " painkillers such as ibuprofen or paracetamol, gepants)"
)
PREGNANCY_STATUS = (
    "a pregnancy status from the last {days} days (pregnant or not, or a pregnancy test"
    " result), needed before DHE or valproate"
)
UNREADABLE = "the resource at {ref}, referenced but not readable (send it in the referral's Bundle)"
