"""The variant keys a staged rollout adds to a flag: its arms' own (`<variant>~r<id>`) and the
excluded rest's (`<control>~excluded`). Shared by the arms writer and the readers of telemetry."""

EXCLUDED_SUFFIX = "~excluded"
ROLLOUT_SUFFIX = "~r"


def excluded_variant(control: str) -> str:
    """The variant the units outside both arms get: `<control>~excluded`."""
    return control + EXCLUDED_SUFFIX


def is_excluded(variant: str) -> bool:
    """Whether `variant` is a rollout's excluded rest (never an arm to compare)."""
    return variant.endswith(EXCLUDED_SUFFIX)


def rollout_suffix(rollout_id: int) -> str:
    """The suffix of the variant keys rollout `rollout_id` serves its arms as: `~r<id>`."""
    return f"{ROLLOUT_SUFFIX}{rollout_id}"
