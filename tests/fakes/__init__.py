"""Loopback stand-ins for the outside world (push services), speaking their real protocols."""
