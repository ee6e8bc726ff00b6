"""Entry point of a ProcessFleet child: `python -m fleetd.sim.worker` (plans arrive pickled on stdin)."""

from fleetd.sim.fleet import child_main

if __name__ == "__main__":
    child_main()
