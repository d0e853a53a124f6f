"""Local development host: Azurite and a stand-in for the Functions host (Core Tools cannot be
installed here)."""
