# The names `batch.inputs` exports, each from the module that defines it.

from .reader import (
    InputFile as InputFile,
)
from .reader import (
    Layout as Layout,
)
from .reader import (
    RawRow as RawRow,
)
from .sniff import (
    delimiter_from as delimiter_from,
)
