"""Admin for segments: rules editor with live count and sample, static list upload."""
