"""phonefleet's worker: drives exactly one Geelark cloud phone, the one given by ``--phone-id``.

Modules, each owning one thing:

- ``cli``: the ``phonefleet-worker`` command line; ``settings``: its pydantic-settings class.
- ``worker``: the composition root (``run_worker``, ``Worker``) and signal handling.
- ``session``: the device state machine; ``states``: its states and allowed transitions.
- ``connection``: the ADB connection data from the mounted Secret.
- ``adb``: the adb gateway; ``appium_gateway``: the Appium gateway.
- ``tasks``: the task interface, the heartbeat task and job sources.
- ``probes``: the /readyz and /livez endpoint; ``lifecycle``: stop requests, waits, liveness.
- ``backoff``: recovery delays; ``errors``: the exception tree.

Nothing here imports the operator, kopf or kubernetes: the worker holds no Geelark credentials.
"""
