"""The daemon: polling, in-memory fleet state, storage, service behaviour."""
