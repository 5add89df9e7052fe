"""`carebot chat`: talk to the flows in a terminal, no platform account needed."""
