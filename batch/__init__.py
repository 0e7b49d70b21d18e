"""The generic async batch engine: its public face (what a job and its program import).

Everything is loaded on first use (`lazy_loader`, from `__init__.pyi`): a program's
`--help` imports none of the engine.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
