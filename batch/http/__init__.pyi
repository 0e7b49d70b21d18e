# The names `batch.http` exports, each from the module that defines it.

from .classify import (
    JsonAnswer as JsonAnswer,
)
from .classify import (
    Reader as Reader,
)
from .classify import (
    read_answer as read_answer,
)
from .gate import (
    ASKING as ASKING,
)
from .gate import (
    GateRequest as GateRequest,
)
from .gate import (
    GateSettings as GateSettings,
)
from .gate import (
    GateStats as GateStats,
)
from .gate import (
    RequestGate as RequestGate,
)
from .limits import (
    retry_after as retry_after,
)
from .retry import (
    RetryPolicy as RetryPolicy,
)
from .transport import (
    HttpAnswer as HttpAnswer,
)
from .transport import (
    TransportSettings as TransportSettings,
)
