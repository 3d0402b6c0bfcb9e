"""The firmware sources (C core, Makefile, QEMU test images), shipped so `raptor export` can copy them."""
