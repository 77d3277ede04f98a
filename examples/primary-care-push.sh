#!/usr/bin/env bash
# A primary-care practice's REST push (the BSeR pattern): Patient, Condition, Observations, then
# the ServiceRequest that references them, then the practice's own Task. Each file names what it
# points at with a placeholder (PATIENT_ID, ...), filled in from the ids the service answers.
# Usage: examples/primary-care-push.sh [BASE]   (BASE defaults to http://127.0.0.1:8080)
set -euo pipefail
BASE=${1:-http://127.0.0.1:8080}
DIR="$(dirname "$0")/primary-care-push"
ids=()

post() {  # post FILE TYPE -> prints the new resource's id (from the Location header)
  local body
  body=$(sed -e "s/^//" "${ids[@]/#/-e}" "$DIR/$1")
  curl -sS -f -i -X POST "$BASE/fhir/$2" -H 'Content-Type: application/fhir+json' --data "$body" \
    | tr -d '\r' | sed -n -E 's#^[Ll]ocation: .*/fhir/[A-Za-z]+/([^/]+)/_history/.*#\1#p'
}

patient=$(post 1-patient.json Patient);            ids+=("s/PATIENT_ID/$patient/g")
condition=$(post 2-condition.json Condition);      ids+=("s/CONDITION_ID/$condition/g")
headache=$(post 3-headache-days.json Observation); ids+=("s/HEADACHE_ID/$headache/g")
migraine=$(post 4-migraine-days.json Observation); ids+=("s/MIGRAINE_ID/$migraine/g")
referral=$(post 5-service-request.json ServiceRequest); ids+=("s/REFERRAL_ID/$referral/g")
post 6-task.json Task >/dev/null
echo "ServiceRequest/$referral"
