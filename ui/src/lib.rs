//! The `cronmesh tui` status viewer (ratatui), built on the admin HTTP API only.
