"""Assessment: the eligibility engine run on referrals (the worker's evaluation, the dry
run, CDS Hooks cards)."""
