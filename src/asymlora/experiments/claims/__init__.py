"""Do the result files support the research's six claims, and one consequence of ours (7: equal memory)? One rule per claim, each verdict
``holds``, ``does not hold`` or ``not measured``, with the numbers it used and their files.

* :mod:`.evidence` — find result files by name and read them into typed records (:class:`Inputs`);
* :mod:`.rules` — the seven rules (:data:`CLAIMS`), :class:`Evidence`, :class:`Verdict`, :func:`evaluate`;
* :mod:`.render` — the markdown table and its JSON twin.

The rules are stated in words in docs/claims.md.
"""

from asymlora.experiments.claims.evidence import Inputs, load_inputs
from asymlora.experiments.claims.rules import CLAIMS, FAILS, HOLDS, NOT_MEASURED, Evidence, Verdict, evaluate

__all__ = ["CLAIMS", "FAILS", "HOLDS", "NOT_MEASURED", "Evidence", "Inputs", "Verdict", "evaluate", "load_inputs"]
