//! The command-line client for the admin HTTP API.
