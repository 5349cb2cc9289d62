"""Training of AgeGuard's own age head (``ageguard train age``); needs the ``[train]`` extra."""
