"""Built-in op declarations; importing this package registers them in REGISTRY."""

from netc.compiler.ops import (  # noqa: F401  (imported for their registration side effect)
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
