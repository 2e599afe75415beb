"""The components that ship with vitcore, registered as the built-in plugins."""
