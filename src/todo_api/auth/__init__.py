"""JWT resource-server authentication: key sources, verification, scopes."""
