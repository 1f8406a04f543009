"""Statistics for comparing a treatment with its control: pure functions over sufficient statistics."""
