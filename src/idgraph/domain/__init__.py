"""Pure domain logic: no I/O, no storage, no web. Everything here is testable in memory."""
