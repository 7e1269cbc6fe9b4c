//! The Durable Object wiring for Blaze. It is an empty shell until the worker issue fills it.
