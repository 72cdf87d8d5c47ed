"""A catalogue of realistic backward-pass bugs, each next to its correct twin."""
