"""The convert-manifest workflow's task code: claim a run, finalize it, compensate it, recover
stuck manifests, and the circuit breaker. Lambda handlers in app.py call these functions; the
local runtime calls the same functions through moto's Step Functions interpreter."""
