"""The durable progress store: items, answers, rejects, the run folder and its lock.

The wing's face: other wings and jobs/ import from here, never from its modules.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
