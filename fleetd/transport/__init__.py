"""Transport layer: framing, crypto, timeouts. Knows nothing of vendors' command semantics."""
