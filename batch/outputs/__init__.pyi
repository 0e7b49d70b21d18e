# The names `batch.outputs` exports, each from the module that defines it.

from .dataset import (
    WORK as WORK,
)
from .dataset import (
    append_run as append_run,
)
from .dataset import (
    check_layout as check_layout,
)
from .dataset import (
    earlier_nights as earlier_nights,
)
from .dataset import (
    is_old_layout as is_old_layout,
)
from .dataset import (
    migrate_layout as migrate_layout,
)
from .dataset import (
    night_file as night_file,
)
from .dataset import (
    partition_dir as partition_dir,
)
from .dataset import (
    placer as placer,
)
from .dataset import (
    prepare_folders as prepare_folders,
)
from .dataset import (
    prepare_root as prepare_root,
)
from .dataset import (
    run_log_path as run_log_path,
)
from .dataset import (
    table_dir as table_dir,
)
from .dataset import (
    work_dir as work_dir,
)
from .export import (
    FORMATS as FORMATS,
)
from .export import (
    Exported as Exported,
)
from .export import (
    export_tables as export_tables,
)
from .export import (
    remove_stale as remove_stale,
)
from .export import (
    write_rejects as write_rejects,
)
from .writer import (
    OutputSet as OutputSet,
)
from .writer import (
    TableWriter as TableWriter,
)
from .writer import (
    dir_mode as dir_mode,
)
from .writer import (
    make_dirs as make_dirs,
)
from .writer import (
    write_json as write_json,
)
