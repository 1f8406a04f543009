"""The exposure log: who saw which variant, recorded from OFREP and SDK batches, counted per day."""

from reelout.flags.exposures.service import variant_counts, variant_of

__all__ = ["variant_counts", "variant_of"]
