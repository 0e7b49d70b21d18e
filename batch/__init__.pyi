# The names `batch` exports, each from the module that defines it.

from .contract import (
    REJECTS_VIEW as REJECTS_VIEW,
)
from .contract import (
    SUMMARY_VIEW as SUMMARY_VIEW,
)
from .contract import (
    Admitted as Admitted,
)
from .contract import (
    Answer as Answer,
)
from .contract import (
    BaseAsker as BaseAsker,
)
from .contract import (
    BaseJob as BaseJob,
)
from .contract import (
    Codec as Codec,
)
from .contract import (
    Column as Column,
)
from .contract import (
    Earlier as Earlier,
)
from .contract import (
    Job as Job,
)
from .contract import (
    RowValues as RowValues,
)
from .contract import (
    Stored as Stored,
)
from .contract import (
    Table as Table,
)
from .contract import (
    TableRows as TableRows,
)
from .contract import (
    Tally as Tally,
)
from .contract import (
    Verdict as Verdict,
)
from .contract import (
    View as View,
)
from .errors import (
    AbortError as AbortError,
)
from .errors import (
    AccountingError as AccountingError,
)
from .errors import (
    AnswerError as AnswerError,
)
from .errors import (
    AnswerTimeout as AnswerTimeout,
)
from .errors import (
    BatchError as BatchError,
)
from .errors import (
    CertificateError as CertificateError,
)
from .errors import (
    ConfigurationError as ConfigurationError,
)
from .errors import (
    ConnectionFailure as ConnectionFailure,
)
from .errors import (
    ConnectTimeout as ConnectTimeout,
)
from .errors import (
    CredentialsRejected as CredentialsRejected,
)
from .errors import (
    DirLocked as DirLocked,
)
from .errors import (
    ForeignAnswer as ForeignAnswer,
)
from .errors import (
    InputError as InputError,
)
from .errors import (
    Interrupted as Interrupted,
)
from .errors import (
    ItemRejected as ItemRejected,
)
from .errors import (
    NameResolutionError as NameResolutionError,
)
from .errors import (
    OutageTooLong as OutageTooLong,
)
from .errors import (
    PausedError as PausedError,
)
from .errors import (
    ProtocolError as ProtocolError,
)
from .errors import (
    ProxyRefused as ProxyRefused,
)
from .errors import (
    RateLimited as RateLimited,
)
from .errors import (
    RequestError as RequestError,
)
from .errors import (
    RequestTimeout as RequestTimeout,
)
from .errors import (
    ResumeMismatch as ResumeMismatch,
)
from .errors import (
    RunError as RunError,
)
from .errors import (
    ServerFailure as ServerFailure,
)
from .errors import (
    Stalled as Stalled,
)
from .errors import (
    StoreError as StoreError,
)
from .errors import (
    TransportError as TransportError,
)
from .errors import (
    UnexpectedAnswer as UnexpectedAnswer,
)
from .errors import (
    UnusableAnswers as UnusableAnswers,
)
from .errors import (
    UsageError as UsageError,
)
from .log import (
    Log as Log,
)
from .run.lifecycle import (
    run_batch as run_batch,
)
from .settings import (
    BatchResult as BatchResult,
)
from .settings import (
    BatchSettings as BatchSettings,
)
from .signals import (
    deferred as deferred,
)
from .signals import (
    held as held,
)
