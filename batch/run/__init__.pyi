# The names `batch.run` exports, each from the module that defines it.

from .lifecycle import (
    run_batch as run_batch,
)
from .runner import (
    fast_loop_factory as fast_loop_factory,
)
from .timeline import (
    TIMELINE_NAME as TIMELINE_NAME,
)
from .timeline import (
    read_samples as read_samples,
)
