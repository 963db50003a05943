"""The built-in op declarations, one module per family; importing this package declares them all.

:mod:`netc.compiler.registry` imports it and registers every declaration (``opdef.BUILTINS``).
"""

from netc.compiler.ops import (  # noqa: F401  (imported for their declarations)
    activation,
    adaptive_pool,
    attention,
    conv,
    dense,
    fused,
    merge,
    norm,
    pool,
    recurrent,
    reshape,
)
