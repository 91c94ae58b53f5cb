"""What the tests share: fakes, private servers and helpers to start real ones."""
