"""firesmoke."""
