"""attn-doctor verify: real kernel launches against a reference, and a small model forward."""
