"""Read-only probes, one module per system; each turns a catalog entry into Checks."""
