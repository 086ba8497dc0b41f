"""Local fakes of external services at the boundary (never mocks of our own code)."""
