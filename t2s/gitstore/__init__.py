"""The only code that runs git: :class:`~t2s.gitstore.store.GitStore` reads objects,
writes trees and commits in private indexes, moves refs by compare-and-swap, and keeps
notes under a lock. Nothing here touches the user's working tree or index (except
``commit_paths`` and ``fast_forward``, which ``t2s init`` and the demo use for the user).
"""
