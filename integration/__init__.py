"""The Docker Engine integration suite (a package, so that its conftest stays integration.conftest)."""
