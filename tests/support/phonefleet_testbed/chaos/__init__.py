"""The seeded chaos test's machinery: a fleet plan, a fault timeline, an independent checker.

``run.run_chaos`` plays one run on a control plane; ``checker.Checker`` (its invariants are
written down in that module) can also be fed by hand, which is how its own tests make it fail.
``options`` is the pytest plugin of ``--chaos-seconds`` and ``--chaos-seed``.
"""
