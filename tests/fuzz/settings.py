"""Hypothesis settings of the fuzz suite: fixed examples by default, so CI is reproducible.

``DIALTONE_FUZZ_EXAMPLES`` sets the examples per RPC (the defaults keep ``make test`` short);
``DIALTONE_FUZZ_SEED`` draws other examples than the default ones (``python -m bench.fuzz --seed``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, Phase, seed, settings


def fuzzed(default_examples: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a @given test: its example count, no deadline, fixed or seeded examples."""
    examples = int(os.environ.get("DIALTONE_FUZZ_EXAMPLES") or default_examples)
    chosen_seed = os.environ.get("DIALTONE_FUZZ_SEED")
    configured = settings(max_examples=examples, deadline=None, derandomize=not chosen_seed, database=None,
                          suppress_health_check=list(HealthCheck), print_blob=False, report_multiple_bugs=False,
                          phases=[Phase.explicit, Phase.generate, Phase.shrink])

    def decorate(test: Callable[..., Any]) -> Callable[..., Any]:
        test = configured(test)
        return seed(int(chosen_seed))(test) if chosen_seed else test
    return decorate
