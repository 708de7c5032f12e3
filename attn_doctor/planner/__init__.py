"""What diagnosis, resolution and the decision share (pure): readings of an ``Environment``
(``machine``), backend compatibility verdicts (``compat``), transformers' ``attn_implementation``
values (``attn_impl``), the frameworks' pins and knobs (``frameworks``), the one pip command
builder (``pip_command``) and the resolver's output types (``plans``).

Nothing in this package reads the machine, starts a process or imports torch.
"""
