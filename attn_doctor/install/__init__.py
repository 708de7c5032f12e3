"""Acting on an ``InstallPlan``: the only code that runs pip.

- ``pip``: the one function every pip (or uv) call goes through, and the constraints that keep
  torch, torchvision, torchaudio and triton exactly where they are.
- ``state``: what is installed in the target interpreter, the difference between two states,
  backups of what pip will replace, and the rollback to a recorded state.
- ``lock`` / ``journal``: one install at a time per environment; a journal that survives a
  killed run so the next run can roll it back.
- ``check``: the post-install import in a child process with a timeout.
- ``build``: the environment of a source build (``MAX_JOBS``, the GPU's arch only).
- ``execute``: the steps in order — lock, record, predict, back up, install, check, roll back.
- ``download``: fetch the wheels another machine needs, from its snapshot.
"""
