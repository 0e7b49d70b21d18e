# The names `batch.store` exports, each from the module that defines it.

from .folder import (
    FINISHED_NAME as FINISHED_NAME,
)
from .folder import (
    STORE_NAME as STORE_NAME,
)
from .folder import (
    check_folder as check_folder,
)
from .folder import (
    check_tree as check_tree,
)
from .folder import (
    finished_before as finished_before,
)
from .folder import (
    forget as forget,
)
from .folder import (
    mark_finished as mark_finished,
)
from .folder import (
    open_private as open_private,
)
from .folder import (
    remove_store as remove_store,
)
from .items import (
    NewItem as NewItem,
)
from .items import (
    OpenItem as OpenItem,
)
from .items import (
    Reject as Reject,
)
from .lock import (
    FolderLock as FolderLock,
)
from .progress_store import (
    ProgressStore as ProgressStore,
)
