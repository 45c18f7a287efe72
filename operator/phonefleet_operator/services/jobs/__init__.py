"""The PhoneJob ledger: scheduling jobs onto bound workers, fencing attempts, caps and retries.

- ``tokens``: the per-binding job token (derived from one operator key, never stored per binding);
- ``schedule``: pure decisions: which job of a binding starts, and why the others wait;
- ``ledger``: pure status transitions of a job (start, end, wait, fail);
- ``observed``: the jobs view the PhoneJob watch feeds;
- ``service``: the loop per binding that applies them through the API and the worker client;
- ``attempts``: one attempt from start to end (deliver, follow, fence, end);
- ``fencing``: when an attempt whose pod or binding went away runs nowhere;
- ``writes``: conditional status writes and the Events of a job's story;
- ``conditions``: the binding's conditions the loop owns (AccountHealthy, WorkerImageCurrent);
- ``endpoints``: where a worker takes job requests; ``admission``: the apply-time check;
- ``protocol``: what a worker of a given release is sent;
- ``backfill``: the job token written into a Secret provisioned without it (older bindings);
"""
