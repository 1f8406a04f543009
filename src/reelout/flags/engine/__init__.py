"""The pure flag engine: flagd flag sets parsed, validated and evaluated, with no database or web framework."""
