"""pyasic adapter (optional extra `fleetd[pyasic]`): the long tail of models no native driver claims."""

from fleetd.drivers.pyasic.driver import INSTALL_HINT, PyasicDriver, pyasic_missing

__all__ = ["INSTALL_HINT", "PyasicDriver", "pyasic_missing"]
