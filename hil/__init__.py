"""Hardware in the loop: the framed serial protocol, transports, and `raptor hil`."""
