//! The executor agent (`cronmesh executor`, and the built-in one of `dev`).
