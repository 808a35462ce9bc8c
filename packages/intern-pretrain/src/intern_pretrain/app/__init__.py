"""The ``python -m intern_pretrain`` app: stage plans and phases, run folders, resume, the bench after."""
