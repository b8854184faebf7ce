"""AugCon (arXiv 2405.16579): context-driven SFT data from a corpus through a Context-Split-Tree,
a contrastive query scorer, ROUGE-L dedup, and self-aligned, self-improving answers."""

from pipelines.augcon.config import AUGCON_PRESETS, AugConConfig, AugConInputs
from pipelines.augcon.run import run_augcon

__all__ = ["AUGCON_PRESETS", "AugConConfig", "AugConInputs", "run_augcon"]
