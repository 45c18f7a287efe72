"""``make bench``: how fast and how cheaply the operator converges N PhoneBindings.

One run starts the local control plane and the Geelark simulator, then measures on them:

* the ceiling: a plain parallel client creating the claims, Secrets and pods itself;
* the operator, started as in production, converging N bindings applied at once, then its
  steady-state Geelark calls;
* the seed's way: validating the N assignments by listing every page per assignment.

``python -m bench --help`` lists the options; results go to ``bench/results/``.
"""
