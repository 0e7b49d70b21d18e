"""Output files that appear whole, the workbook, export from the store, and the dataset root.

The wing's face: other wings and jobs/ import from here, never from its modules.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
