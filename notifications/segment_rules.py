"""Segment rule "device": customers with an active device of a kind or platform."""
