"""Admin for customers, events, consent topics, stage rules and transitions."""
