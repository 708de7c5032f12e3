"""Attention functions attn-doctor registers with transformers' ``AttentionInterface`` for
backends that are not transformers ``attn_implementation`` values (xformers, SageAttention).

Used by the runtime (``register_*``) and by verify's model check, which runs what users run.
"""
