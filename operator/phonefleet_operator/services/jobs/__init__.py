"""The PhoneJob ledger: scheduling jobs onto bound workers, fencing attempts, caps and retries.

- ``tokens``: the per-binding job token (derived from one operator key, never stored per binding);
- ``schedule``: pure decisions: which job of a binding starts, and why the others wait;
- ``ledger``: pure status transitions of a job (start, end, wait, fail);
- ``service``: the loop per binding that applies them through the API and the worker client;
- ``backfill``: the job token written into a Secret provisioned without it (older bindings);
- ``checks``: the checks of a job's spec shared by the loop and the admission webhook.
"""
