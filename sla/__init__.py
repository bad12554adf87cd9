"""The SLA checker: objectives measured in Prometheus, verdicts, and reports (docs/sla.md).

Entry points: ``sla.check.run_check`` / ``sla.check.check_command``; objective models in
``sla.objectives``; the only Prometheus access in ``sla.prometheus``.
"""
