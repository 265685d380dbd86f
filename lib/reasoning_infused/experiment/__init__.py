"""Configuration and the artifact store: profiles (profiles/) parsed into typed settings, and one
folder per stage output keyed by exactly what made it."""
