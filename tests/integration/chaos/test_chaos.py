"""The seeded chaos test: 30 bindings over 20 phones converge and run under random faults.

Faults (drawn from one seed, see ``phonefleet_testbed.chaos.faults``): the operator SIGKILLed and
restarted, kube-apiserver restarted, Geelark outages, HTTP 500s, 40007 and 40003 windows, claims
and worker pods deleted by hand, bindings deleted and created again, suspended and resumed, phones
stopped behind the operator's back. An independent checker (its own watches and simulator polls,
``phonefleet_testbed.chaos.checker``, where each invariant and its grace is explained) judges the
whole run: one live pod per phone; a live pod's binding holds the claim; no Open API stop under
the holder's live pod; a Running binding's phone is on; a holder is never told Conflict. When the
faults stop, every binding must settle as its spec says, and once all are deleted no phone,
claim, Secret or pod may be left.

The pooled run does the same with PhonePools required and limits below the bindings (three
pools, three namespaces, ``phonefleet_testbed.chaos.pooled``): the checker also proves that no
pool's ledger (``status.holders``) ever exceeds its ``maxRunning`` and that no more of a pool's
phones are ever on (billed, replayed from the simulator's power journal) than its limit.

``pytest tests/integration/chaos --chaos-seed N --chaos-seconds S`` replays a seed, longer
(``--chaos-pool-seconds`` for the pooled run); ``--chaos-without KIND,...`` leaves kinds of
faults out of the seed's timeline.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from pathlib import Path

import pytest

from phonefleet_testbed.chaos.options import (
    chaos_pool_seconds,
    chaos_seconds,
    chaos_seed,
    chaos_without,
)
from phonefleet_testbed.chaos.run import run_chaos
from phonefleet_testbed.controlplane import ControlPlane

pytestmark = pytest.mark.chaos


def test_the_fleet_keeps_every_invariant_under_seeded_faults_and_settles_clean(
    control_plane: ControlPlane,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No invariant breaks during the faults; afterwards the fleet settles and deletes clean."""
    _run(control_plane, request, capsys, pooled=False)


@pytest.mark.chaos(pooled=True)
def test_pooled_fleet_never_runs_a_pool_above_its_limit_under_seeded_faults(
    control_plane: ControlPlane,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With pools required and limits below the bindings: no invariant breaks (the pools'
    ledgers and billed phones included), the pools fill to their limits and the rest queue."""
    _run(control_plane, request, capsys, pooled=True)


def _run(
    plane: ControlPlane,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    *,
    pooled: bool,
) -> None:
    seed = chaos_seed(request.config)
    if seed is None:
        seed = random.SystemRandom().randrange(1, 2**31)
    # Kept when the run fails (the operator's log is there), removed when it passes.
    work_dir = Path(tempfile.mkdtemp(prefix=f"phonefleet-chaos-{seed}-"))
    with capsys.disabled():
        print(f"\n[chaos] seed {seed} (operator log in {work_dir})", flush=True)
    config = request.config
    report = run_chaos(
        plane,
        seed=seed,
        seconds=chaos_pool_seconds(config) if pooled else chaos_seconds(config),
        work_dir=work_dir,
        say=print,
        without=chaos_without(config),
        pooled=pooled,
    )
    with capsys.disabled():
        print(f"\n{report.summary()}", flush=True)
    assert not report.failed, report.summary()
    shutil.rmtree(work_dir, ignore_errors=True)
