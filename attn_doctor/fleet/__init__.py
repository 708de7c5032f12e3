"""Many machines: read every node's facts, group them, show which nodes differ and why.

``read`` turns files, folders and stdin into ``NodeInput``s; ``ray_gather`` (imported only for
``fleet --ray``) runs ``attn-doctor check --json`` on every node of a Ray cluster; ``group``
is pure and builds the ``FleetReport``; ``decide`` holds the one helper that names a node's
best backend.
"""
