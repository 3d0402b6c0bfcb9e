"""The roof: the `raptor` command and its subcommands; nothing in the library imports them."""
