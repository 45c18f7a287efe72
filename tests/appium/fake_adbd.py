"""The fake Geelark adbd now lives in the simulator (it also serves the real node's phones)."""

from phonefleet_testbed.geelark_sim.adbd import FakeAdbd

__all__ = ["FakeAdbd"]
