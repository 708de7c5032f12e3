"""Pure planning: (Environment, rules/index data, request) -> Diagnosis / install plans.

Nothing in this package reads the machine, starts a process or imports torch.
"""
